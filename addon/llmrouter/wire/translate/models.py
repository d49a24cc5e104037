"""What an OpenAI-format model accepts, by model name, where that differs from the common case.

OpenAI's reasoning families (o1, o3, o4-*, gpt-5 before 5.5, except the gpt-5-chat models):
- reject `max_tokens` and want `max_completion_tokens`;
- reject `temperature` and `top_p` other than the default 1;
- reject `stop` (gpt-5.5 and later accept it again).
Every other model (gpt-4o, DeepSeek, vLLM, Ollama, Gemini, OpenRouter's `vendor/model` names,
which OpenRouter adapts itself) gets `max_tokens`, which all OpenAI-compatible servers accept.
A name that the rule cannot see through (an Azure deployment called `prod-reasoner`) is what the
provider setting `max_tokens_field` (and `reasoning_model`) override.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

MaxTokensField = Literal["max_tokens", "max_completion_tokens"]

_REASONING = re.compile(r"^(o[1-9](-|$)|gpt-5(?!-chat))")
_GPT5_MINOR = re.compile(r"^gpt-5\.(\d+)")


@dataclass(frozen=True, slots=True)
class ModelRules:
    max_tokens_field: MaxTokensField
    sampling: bool  # accepts temperature / top_p other than 1
    stop: bool  # accepts `stop`


def openai_rules(
    model: str | None,
    max_tokens_field: MaxTokensField | None = None,
    reasoning_model: bool | None = None,
) -> ModelRules:
    """The rules for `model` as an OpenAI-format provider sees it (no `vendor/` prefix)."""
    name = (model or "").lower()
    reasoning = bool(_REASONING.match(name)) if reasoning_model is None else reasoning_model
    minor = _GPT5_MINOR.match(name)
    stop_ok = not reasoning or (minor is not None and int(minor.group(1)) >= 5)
    field: MaxTokensField = max_tokens_field or (
        "max_completion_tokens" if reasoning else "max_tokens"
    )
    return ModelRules(field, not reasoning, stop_ok)


_ECHO = re.compile(r"^(deepseek|kimi-k2)")


def reasoning_echo(model: str | None) -> str | None:
    """The assistant-message field in which this model wants its earlier reasoning back.

    DeepSeek (and Kimi K2 thinking) in thinking mode answer 400 to a tool loop whose assistant
    messages lack `reasoning_content`; OpenAI answers 400 to that unknown field. So only these
    get it, by name (a provider setting overrides)."""
    return "reasoning_content" if _ECHO.match((model or "").lower()) else None


def wants_thought_signature(model: str | None) -> bool:
    """Gemini 3 answers 400 to a replayed tool call without `extra_content.google.
    thought_signature`. The router does not carry Gemini's real signatures through Anthropic
    clients, so it sends Google's documented sentinel for histories it did not sign."""
    return bool(re.match(r"^gemini-([3-9]|\d\d)", (model or "").lower()))


def claude_thinks(model: str | None) -> bool:
    """Whether an Anthropic model supports extended thinking (Claude 3.7 and every 4.x)."""
    name = (model or "").lower()
    if not name.startswith("claude"):
        return False
    return not re.match(r"^claude-(instant|2|3-(opus|sonnet|haiku|5))", name)

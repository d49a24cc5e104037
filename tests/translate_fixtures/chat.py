"""OpenAI-format provider families, each rendering chunks and bodies in its documented shape.

- openai: `service_tier`, `system_fingerprint`, `obfuscation` padding, `"usage":null` on every
  chunk when include_usage is set, then a usage chunk with `choices: []`.
- azure: a first chunk with empty `choices`, empty id/model and `prompt_filter_results`;
  `content_filter_results` on every choice.
- openrouter: `: OPENROUTER PROCESSING` comments, `reasoning` + `reasoning_details`,
  `native_finish_reason`, usage with `cost`; errors as a chunk with `error` and
  `finish_reason: "error"`.
- deepseek: `reasoning_content` and `content` both present, one null; usage in the finish
  chunk with `prompt_cache_hit_tokens`; `: keep-alive` comments.
- vllm: `reasoning`; a first tool delta without `arguments`; `stop_reason` on choices.
- ollama: whole tool calls in one delta; `fp_ollama`.
- gemini: keys sorted, no `index` on tool calls (or 0 on every call), finish `stop` after tool
  calls, usage in the finish chunk.
"""

from __future__ import annotations

from typing import Any

from translate_fixtures.base import compact

Step = tuple[Any, ...]
_FILTER = {
    s: {"filtered": False, "severity": "safe"} for s in ("hate", "self_harm", "sexual", "violence")
}


class Family:
    name = "openai"
    model = "gpt-4o-2024-08-06"
    id = "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG"
    reasoning_field = "reasoning_content"

    def envelope(self, choices: list[Any], usage: Any = "none") -> dict[str, Any]:
        obj: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": 1731000000,
            "model": self.model,
            "service_tier": "default",
            "system_fingerprint": "fp_50cad350e4",
            "choices": choices,
        }
        if usage != "none":
            obj["usage"] = usage
        obj["obfuscation"] = "q3Rk"
        return obj

    def choice(self, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

    def first(self) -> dict[str, Any]:
        return {"role": "assistant", "content": "", "refusal": None}

    def text(self, t: str) -> dict[str, Any]:
        return {"content": t}

    def reasoning(self, t: str) -> dict[str, Any]:
        return {"reasoning_content": t}

    def usage(self, prompt: int, completion: int, cached: int) -> dict[str, Any]:
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        }

    def preamble(self) -> list[bytes]:
        return []

    def event(self, obj: dict[str, Any]) -> bytes:
        return b"data: " + compact(obj) + b"\n\n"

    def chunk(self, choice: dict[str, Any] | None, usage: Any = "none") -> bytes:
        return self.event(self.envelope([choice] if choice else [], usage))

    def error(self, message: str) -> bytes:
        err = {"message": message, "type": "server_error", "param": None, "code": None}
        return self.event({"error": err})


class Azure(Family):
    name = "azure"
    model = "gpt-4o-2024-11-20"
    id = "chatcmpl-AzUr3xQ1"

    def envelope(self, choices: list[Any], usage: Any = "none") -> dict[str, Any]:
        obj = {"choices": choices, "created": 1731000000, "id": self.id, "model": self.model}
        obj.update({"object": "chat.completion.chunk", "system_fingerprint": "fp_ee1d74bde0"})
        if usage != "none":
            obj["usage"] = usage
        return obj

    def choice(self, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        c = super().choice(delta, finish)
        c["content_filter_results"] = {} if finish else _FILTER
        return c

    def preamble(self) -> list[bytes]:
        results = [{"prompt_index": 0, "content_filter_results": _FILTER}]
        first = {"choices": [], "created": 0, "id": "", "model": "", "object": ""}
        return [self.event({**first, "prompt_filter_results": results})]


class OpenRouter(Family):
    name = "openrouter"
    model = "deepseek/deepseek-r1"
    id = "gen-1731000000-Zq0aB"

    def envelope(self, choices: list[Any], usage: Any = "none") -> dict[str, Any]:
        obj = {"id": self.id, "provider": "DeepInfra", "model": self.model}
        obj.update({"object": "chat.completion.chunk", "created": 1731000000, "choices": choices})
        if usage != "none":
            obj["usage"] = usage
        return obj

    def choice(self, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "index": 0,
            "delta": delta,
            "finish_reason": finish,
            "native_finish_reason": finish,
            "logprobs": None,
        }

    def first(self) -> dict[str, Any]:
        return {"role": "assistant", "content": "", "reasoning": None, "reasoning_details": []}

    def text(self, t: str) -> dict[str, Any]:
        return {"role": "assistant", "content": t, "reasoning": None, "reasoning_details": []}

    def reasoning(self, t: str) -> dict[str, Any]:
        detail = {"type": "reasoning.text", "text": t, "format": "unknown", "index": 0}
        return {"role": "assistant", "content": "", "reasoning": t, "reasoning_details": [detail]}

    def usage(self, prompt: int, completion: int, cached: int) -> dict[str, Any]:
        u = super().usage(prompt, completion, cached)
        u["prompt_tokens_details"] = {"cached_tokens": cached}
        return {**u, "cost": 0.00042, "is_byok": False}

    def preamble(self) -> list[bytes]:
        return [b": OPENROUTER PROCESSING\n\n", b": OPENROUTER PROCESSING\n\n"]

    def error(self, message: str) -> bytes:
        obj = self.envelope([self.choice({"content": ""}, "error")])
        obj["error"] = {"code": 502, "message": message}
        return self.event(obj)


class DeepSeek(Family):
    name = "deepseek"
    model = "deepseek-reasoner"
    id = "930c60df-bf64-41c9-a88e-3ec75f81e00e"

    def envelope(self, choices: list[Any], usage: Any = "none") -> dict[str, Any]:
        obj = {"id": self.id, "object": "chat.completion.chunk", "created": 1731000000}
        obj.update({"model": self.model, "system_fingerprint": "fp_7e73fd9a08_prod0820"})
        obj["choices"] = choices
        if usage != "none":
            obj["usage"] = usage
        return obj

    def first(self) -> dict[str, Any]:
        return {"role": "assistant", "content": None, "reasoning_content": ""}

    def text(self, t: str) -> dict[str, Any]:
        return {"content": t, "reasoning_content": None}

    def reasoning(self, t: str) -> dict[str, Any]:
        return {"content": None, "reasoning_content": t}

    def usage(self, prompt: int, completion: int, cached: int) -> dict[str, Any]:
        u = super().usage(prompt, completion, cached)
        u["prompt_tokens_details"] = {"cached_tokens": cached}
        u["completion_tokens_details"] = {"reasoning_tokens": 3}
        return {**u, "prompt_cache_hit_tokens": cached, "prompt_cache_miss_tokens": prompt - cached}

    def preamble(self) -> list[bytes]:
        return [b": keep-alive\n\n"]


class VLLM(Family):
    name = "vllm"
    model = "Qwen/Qwen3-8B"
    id = "chatcmpl-7f2c1e0a9b8d4c3e"
    reasoning_field = "reasoning"

    def envelope(self, choices: list[Any], usage: Any = "none") -> dict[str, Any]:
        obj = {"id": self.id, "object": "chat.completion.chunk", "created": 1731000000}
        obj.update({"model": self.model, "choices": choices})
        if usage != "none":
            obj["usage"] = usage
        return obj

    def choice(self, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {**super().choice(delta, finish), "stop_reason": None}

    def first(self) -> dict[str, Any]:
        return {"role": "assistant", "content": ""}

    def reasoning(self, t: str) -> dict[str, Any]:
        return {"reasoning": t}


class Ollama(VLLM):
    name = "ollama"
    model = "qwen3:8b"
    id = "chatcmpl-535"

    def envelope(self, choices: list[Any], usage: Any = "none") -> dict[str, Any]:
        obj = super().envelope(choices, usage)
        obj["system_fingerprint"] = "fp_ollama"
        return obj

    def choice(self, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {"index": 0, "delta": {"role": "assistant", **delta}, "finish_reason": finish}


class Gemini(Family):
    name = "gemini"
    model = "gemini-2.5-flash"
    id = "kT1EaPqLBNe5nvgPz8rYsAs"

    def envelope(self, choices: list[Any], usage: Any = "none") -> dict[str, Any]:
        obj: dict[str, Any] = {"choices": choices, "created": 1731000000, "id": self.id}
        obj.update({"model": self.model, "object": "chat.completion.chunk"})
        if usage != "none":
            obj["usage"] = usage
        return obj

    def choice(self, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        c: dict[str, Any] = {"delta": {**delta, "role": "assistant"}, "index": 0}
        if finish:
            c["finish_reason"] = finish
        return c

    def first(self) -> dict[str, Any]:
        return {}

    def usage(self, prompt: int, completion: int, cached: int) -> dict[str, Any]:
        return {
            "completion_tokens": completion,
            "prompt_tokens": prompt,
            "total_tokens": prompt + completion,
        }


FAMILIES: dict[str, Family] = {
    f.name: f for f in (Family(), Azure(), OpenRouter(), DeepSeek(), VLLM(), Ollama(), Gemini())
}

"""Request translation, OpenAI -> Anthropic, and the unsigned-thinking scrub on the way to any
Anthropic provider."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from llmrouter.wire.translate import translate_request
from translate_fixtures.schemas import check_anthropic

PNG = "iVBORw0KGgoAAAANSUhEUg=="


def o2a(payload: dict[str, Any], model: str = "claude-sonnet-4-5", **kw: Any) -> tuple[dict, list]:
    before = copy.deepcopy(payload)
    out, dropped = translate_request(payload, "openai", "anthropic", model=model, **kw)
    assert payload == before
    check_anthropic(out)
    return out, dropped


def call(i: str, name: str, args: str) -> dict[str, Any]:
    return {"id": i, "type": "function", "function": {"name": name, "arguments": args}}


def test_a_tool_conversation() -> None:
    out, dropped = o2a(
        {
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                        {
                            "type": "image_url",
                            "image_url": {"url": "https://x.test/a.jpg", "detail": "low"},
                        },
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "reasoning_content": "hmm",
                    "tool_calls": [call("call_1", "w", '{"c":"P"}'), call("fn/2:x", "t", "")],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
                {"role": "system", "content": "Answer in French."},
                {
                    "role": "tool",
                    "tool_call_id": "fn/2:x",
                    "content": [{"type": "text", "text": "12:00"}],
                },
                {"role": "user", "content": "thanks"},
            ],
            "max_completion_tokens": 300,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )
    assert out["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Use tools."},
    ]
    assert out["max_tokens"] == 300 and out["stream"] is True
    m = out["messages"]
    assert m[0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}},
    ]
    assert m[1] == {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "call_1", "name": "w", "input": {"c": "P"}},
            {"type": "tool_use", "id": "fn_2_x", "name": "t", "input": {}},
        ],
    }
    assert m[2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
            {"type": "tool_result", "tool_use_id": "fn_2_x", "content": "12:00"},
            {"type": "text", "text": "<system-reminder>\nAnswer in French.\n</system-reminder>"},
            {"type": "text", "text": "thanks"},
        ],
    }
    assert dropped == ["reasoning in assistant messages (unsigned)"]


def test_defaults_limits_and_unknown_fields() -> None:
    out, dropped = o2a(
        {
            "messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "content": "Sure: "},
            ],
            "temperature": 1.6,
            "top_p": 0.5,
            "stop": ["\n", "END"],
            "user": "u-42",
            "n": 2,
            "seed": 7,
            "logprobs": True,
            "frequency_penalty": 0.1,
            "response_format": {"type": "json_object"},
        }
    )
    assert out["max_tokens"] == 4096  # required by Anthropic; every Claude model accepts it
    assert out["temperature"] == 1.0 and out["top_p"] == 0.5
    assert out["stop_sequences"] == ["END"]
    assert out["metadata"] == {"user_id": "u-42"}
    assert out["messages"][-1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "Sure:"}],
    }
    assert set(dropped) == {
        "temperature above 1 (clamped)",
        "stop (whitespace-only sequences)",
        "n",
        "seed",
        "logprobs",
        "frequency_penalty",
        "response_format",
    }
    out, _ = o2a({"messages": [{"role": "user", "content": "x"}]}, default_max_tokens=1000)
    assert out["max_tokens"] == 1000


@pytest.mark.parametrize(
    ("choice", "want"),
    [
        ("auto", {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", {"type": "any", "disable_parallel_tool_use": True}),
        ("none", {"type": "none"}),
        (
            {"type": "function", "function": {"name": "w"}},
            {"type": "tool", "name": "w", "disable_parallel_tool_use": True},
        ),
        (None, {"type": "auto", "disable_parallel_tool_use": True}),
    ],
)
def test_tools_and_tool_choice(choice: Any, want: dict[str, Any]) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "w",
            "description": "Weather",
            "parameters": {"type": "object", "properties": {}},
            "strict": True,
        },
    }
    payload = {
        "messages": [{"role": "user", "content": "x"}],
        "tools": [tool],
        "parallel_tool_calls": False,
    }
    if choice is not None:
        payload["tool_choice"] = choice
    out, dropped = o2a(payload)
    assert out["tools"] == [
        {
            "name": "w",
            "description": "Weather",
            "input_schema": {"type": "object", "properties": {}},
        }
    ]
    assert out["tool_choice"] == want
    assert dropped == ["tools[].function.strict"]


def test_reasoning_effort_turns_on_thinking_only_where_anthropic_accepts_it() -> None:
    base = {
        "messages": [{"role": "user", "content": "x"}],
        "max_tokens": 10000,
        "reasoning_effort": "medium",
        "temperature": 0.3,
    }
    out, dropped = o2a(base)
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    assert "temperature" not in out and dropped == ["temperature (thinking needs 1)"]
    out, dropped = o2a({**base, "max_tokens": 3000, "reasoning_effort": "high"})
    assert out["thinking"]["budget_tokens"] == 2999  # below max_tokens, as Anthropic requires
    for payload, model in [
        (base, "claude-3-5-sonnet-20241022"),  # no extended thinking
        ({**base, "max_tokens": 1000}, "claude-sonnet-4-5"),  # budget under the 1024 minimum
        (
            {
                **base,
                "tools": [{"type": "function", "function": {"name": "w"}}],
                "tool_choice": "required",
            },
            "claude-sonnet-4-5",
        ),  # forced tool use
        (
            {
                **base,
                "messages": [
                    {"role": "user", "content": "x"},
                    {"role": "assistant", "tool_calls": [call("c1", "w", "{}")]},
                    {"role": "tool", "tool_call_id": "c1", "content": "ok"},
                ],
            },
            "claude-sonnet-4-5",
        ),  # a tool loop with no signed thinking to lead it
    ]:
        out, dropped = o2a(payload, model=model)
        assert "thinking" not in out and "reasoning_effort" in dropped


def test_legacy_functions_and_empty_messages() -> None:
    out, dropped = o2a(
        {
            "messages": [
                {"role": "user", "content": "x", "name": "alice"},
                {
                    "role": "assistant",
                    "content": "",
                    "function_call": {"name": "f", "arguments": '{"a": 1}'},
                },
                {"role": "function", "name": "f", "content": "done"},
                {"role": "assistant", "content": ""},
                {"role": "user", "content": "next"},
            ]
        }
    )
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "x"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call_legacy_0", "name": "f", "input": {"a": 1}}
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_legacy_0", "content": "done"},
                {"type": "text", "text": "next"},
            ],
        },
    ]
    assert dropped == ["messages[].name"]


# -- the unsigned-thinking scrub (Anthropic -> Anthropic) ---------------------------------------

SIGNED = {"type": "thinking", "thinking": "real", "signature": "EqQBCgIYAh"}
FOREIGN = {"type": "thinking", "thinking": "from DeepSeek", "signature": ""}
REDACTED = {"type": "redacted_thinking", "data": "EmwKAhgB"}


def a2a(payload: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    before = copy.deepcopy(payload)
    out, dropped = translate_request(payload, "anthropic", "anthropic", model="claude-sonnet-4-5")
    assert payload == before
    return out, dropped


def test_nothing_to_scrub_returns_the_same_object() -> None:
    payload = {"max_tokens": 5, "messages": [{"role": "assistant", "content": [SIGNED, REDACTED]}]}
    out, dropped = a2a(payload)
    assert out is payload and dropped == []


def test_unsigned_thinking_never_reaches_anthropic() -> None:
    tool = {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {}}
    payload = {
        "max_tokens": 5,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": [FOREIGN, {"type": "text", "text": "hi"}]},
            {"role": "user", "content": "y"},
            {"role": "assistant", "content": [{**FOREIGN, "signature": None}]},
            {"role": "user", "content": "z"},
            {"role": "assistant", "content": [SIGNED, tool]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1"}]},
        ],
    }
    out, dropped = a2a(payload)
    assert out["messages"][1]["content"] == [{"type": "text", "text": "hi"}]
    assert [m["role"] for m in out["messages"]] == [
        "user",
        "assistant",
        "user",
        "user",
        "assistant",
        "user",
    ]
    assert out["thinking"] == payload["thinking"]  # the tool loop still starts with signed thinking
    assert dropped == ["thinking blocks without an Anthropic signature (2)"]


def test_thinking_is_turned_off_when_the_tool_loop_loses_its_leading_thinking() -> None:
    """Anthropic: with thinking on, the last assistant message of a tool loop must start with
    a thinking block. A foreign one cannot stay, so thinking goes for this request."""
    tool = {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {}}
    out, dropped = a2a(
        {
            "max_tokens": 5,
            "thinking": {"type": "adaptive"},
            "messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "content": [FOREIGN, tool]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1"}]},
            ],
        }
    )
    assert "thinking" not in out
    assert out["messages"][1]["content"] == [tool]
    assert dropped[-1].startswith("thinking (")


def test_openai_to_openai_is_untouched() -> None:
    payload = {"model": "m", "messages": [{"role": "user", "content": "x"}], "top_k": 3}
    assert translate_request(payload, "openai", "openai") == (payload, [])

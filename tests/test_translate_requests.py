"""Request translation, Anthropic -> OpenAI: each item of the issue's fidelity list."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from llmrouter.wire.translate import translate_request
from llmrouter.wire.translate.models import reasoning_echo, wants_thought_signature
from translate_fixtures.schemas import check_openai

PNG = "iVBORw0KGgoAAAANSUhEUg=="


def a2o(payload: dict[str, Any], model: str = "gpt-4o", **kw: Any) -> tuple[dict, list[str]]:
    before = copy.deepcopy(payload)
    out, dropped = translate_request(payload, "anthropic", "openai", model=model, **kw)
    assert payload == before, "the client's payload is never mutated"
    echo = kw.get("reasoning_field") or reasoning_echo(model)
    check_openai(out, echo=echo, gemini=wants_thought_signature(model))
    return out, dropped


def img(kind: str = "base64") -> dict[str, Any]:
    if kind == "url":
        return {"type": "image", "source": {"type": "url", "url": "https://x.test/cat.png"}}
    return {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}


CLAUDE_CODE_SYSTEM = [
    {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197; cc_entrypoint=cli;"},
    {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
    {
        "type": "text",
        "text": "Be brief.",
        "cache_control": {"type": "ephemeral", "scope": "global"},
    },
]


def test_system_blocks_and_system_messages_inside_messages() -> None:
    out, dropped = a2o(
        {
            "model": "claude-sonnet-4-5",
            "max_tokens": 100,
            "system": CLAUDE_CODE_SYSTEM,
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
                {"role": "system", "content": [{"type": "text", "text": "Now in plan mode."}]},
                {"role": "user", "content": [{"type": "text", "text": "go"}]},
            ],
        }
    )
    assert out["messages"] == [
        {"role": "system", "content": "You are Claude Code.\n\nBe brief."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "system", "content": "Now in plan mode."},
        {"role": "user", "content": "go"},
    ]
    assert out["max_tokens"] == 100 and out["model"] == "gpt-4o"
    assert "system.x-anthropic-billing-header" in dropped and "cache_control" in dropped


def test_a_parallel_tool_turn_keeps_ids_order_errors_and_images() -> None:
    out, dropped = a2o(
        {
            "max_tokens": 50,
            "messages": [
                {"role": "user", "content": [img("url"), {"type": "text", "text": "weather?"}]},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "two calls", "signature": "EqQB"},
                        {"type": "text", "text": "Checking."},
                        {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {"c": "P"}},
                        {"type": "tool_use", "id": "toolu_2", "name": "shot", "input": {}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_1",
                            "content": "nope",
                            "is_error": True,
                        },
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_2",
                            "content": [{"type": "text", "text": "here"}, img()],
                        },
                        {"type": "text", "text": "and now?"},
                    ],
                },
            ],
        }
    )
    m = out["messages"]
    assert m[0] == {
        "role": "user",
        "content": [
            {"type": "image_url", "image_url": {"url": "https://x.test/cat.png"}},
            {"type": "text", "text": "weather?"},
        ],
    }
    assert m[1]["content"] == "Checking."
    assert [
        (c["id"], c["function"]["name"], c["function"]["arguments"]) for c in m[1]["tool_calls"]
    ] == [
        ("toolu_1", "w", '{"c":"P"}'),
        ("toolu_2", "shot", "{}"),
    ]
    assert m[2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "Error: nope"}
    assert m[3]["role"] == "tool" and m[3]["tool_call_id"] == "toolu_2"
    assert m[3]["content"].startswith("here\n[1 attachment(s)")
    # The image of the tool result is never flattened: it follows as a user message.
    assert m[4] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "Attachment(s) returned by tool call toolu_2:"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            {"type": "text", "text": "and now?"},
        ],
    }
    assert len(m) == 5
    assert "thinking blocks" in dropped


@pytest.mark.parametrize(
    ("choice", "want"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "w"}, {"type": "function", "function": {"name": "w"}}),
    ],
)
def test_tool_choice(choice: dict[str, Any], want: Any) -> None:
    tools = [
        {"name": "w", "description": "Weather", "input_schema": {"type": "object"}},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
    ]
    out, dropped = a2o(
        {
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "x"}],
            "tools": tools,
            "tool_choice": {**choice, "disable_parallel_tool_use": True},
        }
    )
    assert out["tools"] == [
        {
            "type": "function",
            "function": {"name": "w", "description": "Weather", "parameters": {"type": "object"}},
        }
    ]
    assert out["tool_choice"] == want
    assert out.get("parallel_tool_calls") is (None if want == "none" else False)
    assert dropped == ["tools[web_search]"]


def test_tool_choice_without_tools_is_not_sent() -> None:
    out, dropped = a2o(
        {
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "bash_20250124", "name": "bash"}],
            "tool_choice": {"type": "any"},
        }
    )
    assert "tools" not in out and "tool_choice" not in out
    assert dropped == ["tools[bash]", "tool_choice"]


@pytest.mark.parametrize(
    ("model", "field", "sampling", "stop"),
    [
        ("gpt-4o", "max_tokens", True, True),
        ("deepseek-chat", "max_tokens", True, True),
        ("o1-mini", "max_completion_tokens", False, False),
        ("o3", "max_completion_tokens", False, False),
        ("o4-mini", "max_completion_tokens", False, False),
        ("gpt-5", "max_completion_tokens", False, False),
        ("gpt-5.1-codex", "max_completion_tokens", False, False),
        ("gpt-5.5", "max_completion_tokens", False, True),
        ("gpt-5-chat-latest", "max_tokens", True, True),
        ("openai/o3", "max_tokens", True, True),  # OpenRouter adapts its own names
    ],
)
def test_model_rules(model: str, field: str, sampling: bool, stop: bool) -> None:
    out, dropped = a2o(
        {
            "max_tokens": 64,
            "temperature": 0.2,
            "top_p": 0.9,
            "stop_sequences": ["END"],
            "messages": [{"role": "user", "content": "x"}],
        },
        model=model,
    )
    assert out[field] == 64
    other = {"max_tokens", "max_completion_tokens"} - {field}
    assert not other & set(out)
    assert ("temperature" in out) is sampling and ("top_p" in out) is sampling
    assert ("stop" in out) is stop
    assert ("temperature" in dropped) is not sampling


def test_provider_settings_override_the_model_rule() -> None:
    msgs = [{"role": "user", "content": "x"}]
    out, _ = a2o(
        {"max_tokens": 8, "temperature": 0.5, "messages": msgs},
        model="prod-reasoner",
        max_tokens_field="max_completion_tokens",
        reasoning_model=True,
    )
    assert out["max_completion_tokens"] == 8 and "temperature" not in out
    out, _ = a2o({"max_tokens": 8, "messages": msgs}, model="o3", max_tokens_field="max_tokens")
    assert out["max_tokens"] == 8


def test_stream_user_stop_and_what_has_no_equivalent() -> None:
    out, dropped = a2o(
        {
            "model": "claude-opus-4-1",
            "max_tokens": 10,
            "stream": True,
            "stop_sequences": ["a", "b", "c", "d", "e"],
            "metadata": {"user_id": '{"device_id":"ab12","session_id":"s1"}'},
            "top_k": 40,
            "service_tier": "auto",
            "container": "c1",
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "messages": [{"role": "user", "content": "x"}],
        }
    )
    assert out["stream"] is True and out["stream_options"] == {"include_usage": True}
    assert out["stop"] == ["a", "b", "c", "d"]
    assert out["user"] == '{"device_id":"ab12","session_id":"s1"}'
    assert set(dropped) == {"stop_sequences[4:]", "top_k", "service_tier", "container", "thinking"}


def test_thinking_becomes_reasoning_effort_for_reasoning_models() -> None:
    msgs = [{"role": "user", "content": "x"}]
    out, _ = a2o(
        {
            "max_tokens": 9,
            "messages": msgs,
            "thinking": {"type": "adaptive"},
            "output_config": {"effort": "high"},
        },
        model="o3",
    )
    assert out["reasoning_effort"] == "high"
    out, _ = a2o(
        {"max_tokens": 9, "messages": msgs, "thinking": {"type": "enabled", "budget_tokens": 1024}},
        model="gpt-5",
    )
    assert out["reasoning_effort"] == "low"
    out, dropped = a2o({"max_tokens": 9, "messages": msgs, "output_config": {"effort": "high"}})
    assert "reasoning_effort" not in out and dropped == ["output_config.effort"]


def test_documents_and_unsupported_blocks() -> None:
    pdf = {
        "type": "document",
        "title": "a.pdf",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
    }
    txt = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "hi"}}
    out, dropped = a2o(
        {
            "max_tokens": 9,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        pdf,
                        txt,
                        {"type": "search_result", "source": "s", "title": "t", "content": []},
                    ],
                }
            ],
        }
    )
    assert out["messages"][0]["content"] == [
        {
            "type": "file",
            "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"},
        },
        {"type": "text", "text": "hi"},
    ]
    assert dropped == ["search_result blocks"]


def test_deepseek_gets_its_reasoning_back_and_openai_never_sees_it() -> None:
    """DeepSeek's thinking mode answers 400 to a tool loop without `reasoning_content`;
    OpenAI answers 400 to that field. Claude Code keeps the thinking the router built."""
    msgs = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Need the tool.", "signature": ""},
                {"type": "tool_use", "id": "call_1", "name": "w", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "sun"}],
        },
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "call_2", "name": "w", "input": {}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "call_2", "content": "sun"}],
        },
        {"role": "assistant", "content": "Sunny."},
        {"role": "user", "content": "thanks"},
    ]
    out, dropped = a2o({"max_tokens": 9, "messages": msgs}, model="deepseek-reasoner")
    echoed = [m.get("reasoning_content") for m in out["messages"] if m["role"] == "assistant"]
    assert echoed == ["Need the tool.", "", ""] and dropped == []
    for model, kw in [("gpt-4o", {}), ("deepseek-v4-pro", {"reasoning_field": ""})]:
        out, dropped = a2o({"max_tokens": 9, "messages": msgs}, model=model, **kw)
        assert not any("reasoning_content" in m for m in out["messages"])
        assert dropped == ["thinking blocks"]
    out, _ = a2o({"max_tokens": 9, "messages": msgs}, model="qwen3", reasoning_field="reasoning")
    assert out["messages"][1]["reasoning"] == "Need the tool."


def test_gemini_3_gets_the_documented_signature_sentinel_on_replayed_tool_calls() -> None:
    msgs = [
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "c1", "name": "w", "input": {}},
                {"type": "tool_use", "id": "c2", "name": "w", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "c1"},
                {"type": "tool_result", "tool_use_id": "c2"},
            ],
        },
    ]
    out, _ = a2o({"max_tokens": 9, "messages": msgs}, model="gemini-3-pro-preview")
    first, second = out["messages"][1]["tool_calls"]
    assert first["extra_content"] == {
        "google": {"thought_signature": "skip_thought_signature_validator"}
    }
    assert "extra_content" not in second
    for model in ("gemini-2.5-flash", "gpt-4o"):
        out, _ = a2o({"max_tokens": 9, "messages": msgs}, model=model)
        assert "extra_content" not in out["messages"][1]["tool_calls"][0]

"""The OpenAI-format fixtures: every family, every case the issue lists."""

from __future__ import annotations

from translate_fixtures.base import Fixture
from translate_fixtures.chat_build import build


def au(prompt: int, completion: int, cached: int = 0) -> dict[str, int]:
    """The usage an Anthropic client must see: input excludes the cached tokens."""
    return {
        "input_tokens": prompt - cached,
        "output_tokens": completion,
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
    }


Z = au(0, 0)  # no usage reported: zeros, never a made-up figure
WEATHER = ("tc", 0, "call_8kG2", "get_weather", "")
PARIS = [("a", 0, '{"ci'), ("a", 0, 'ty": "Pa'), ("a", 0, 'ris"}')]

CHAT_FIXTURES: list[Fixture] = [
    # -- OpenAI ------------------------------------------------------------------------------
    build("text", "openai", [("t", "Hello"), ("t", ", wörld"), ("t", " 👋"), ("finish", "stop")],
          stop="end_turn", usage=(12, 5, 0), expect_usage=au(12, 5)),
    build("text-then-tool", "openai", [("t", "Let me check."), WEATHER, *PARIS,
          ("finish", "tool_calls")], stop="tool_use", usage=(80, 20, 0), expect_usage=au(80, 20)),
    build("parallel-sequential", "openai", [
        ("tc", 0, "call_A1", "get_weather", ""), ("a", 0, '{"city":'), ("a", 0, ' "Paris"}'),
        ("tc", 1, "call_B2", "get_time", ""), ("a", 1, '{"tz": '), ("a", 1, '"Europe/Paris"}'),
        ("finish", "tool_calls")], stop="tool_use", usage=(90, 30, 0), expect_usage=au(90, 30)),
    build("cached", "openai", [("t", "From cache."), ("finish", "stop")],
          stop="end_turn", usage=(2048, 4, 1920), expect_usage=au(2048, 4, 1920)),
    build("length", "openai", [("t", "A long answer that gets cut"), ("finish", "length")],
          stop="max_tokens", usage=(10, 7, 0), expect_usage=au(10, 7)),
    build("empty-arguments", "openai", [("tc", 0, "call_E0", "list_files", ""),
          ("finish", "tool_calls")], stop="tool_use", usage=(30, 5, 0), expect_usage=au(30, 5)),
    build("split-utf8", "openai", [("t", "naïve "), ("t", "日本語"), ("t", " 🎉"),
          ("finish", "stop")], stop="end_turn", usage=(9, 6, 0), expect_usage=au(9, 6), how=5),
    build("mid-stream-error", "openai", [("t", "Partial"), ("error", "The server had an error")],
          stop=None),
    build("cut", "openai", [("t", "Partial ans")], stop=None, end="cut"),
    build("cut-in-tool", "openai", [WEATHER, ("a", 0, '{"city": "Pa')], stop=None, end="cut"),
    # -- Azure -------------------------------------------------------------------------------
    build("text", "azure", [("t", "Bonjour"), ("t", " à tous"), ("finish", "stop")],
          stop="end_turn", usage=(15, 4, 0), expect_usage=au(15, 4)),
    build("content-filter", "azure", [("t", "I can"), ("finish", "content_filter")],
          stop="refusal", usage=(20, 2, 0), expect_usage=au(20, 2)),
    build("tool", "azure", [WEATHER, *PARIS, ("finish", "tool_calls")], stop="tool_use",
          usage=(40, 12, 0), expect_usage=au(40, 12), how="pairs"),
    # -- OpenRouter --------------------------------------------------------------------------
    build("reasoning", "openrouter", [("r", "The user greets"), ("r", " me."),
          ("comment", "OPENROUTER PROCESSING"), ("t", "Hi!"), ("finish", "stop")],
          stop="end_turn", usage=(14, 9, 8), expect_usage=au(14, 9, 8)),
    build("mid-stream-error", "openrouter", [("t", "Hal"),
          ("error", "Provider disconnected unexpectedly")], stop=None),
    # -- DeepSeek ----------------------------------------------------------------------------
    build("reasoning", "deepseek", [("r", "9.11 vs 9.9"), ("r", ": compare"), ("t", "9.9"),
          ("t", " is larger."), ("finish", "stop")], stop="end_turn", usage=(64, 20, 64),
          usage_mode="finish", expect_usage=au(64, 20, 64)),
    build("reasoning-tool", "deepseek", [("r", "Need weather."), WEATHER, *PARIS,
          ("finish", "tool_calls")], stop="tool_use", usage=(300, 40, 256),
          usage_mode="finish", expect_usage=au(300, 40, 256)),
    # -- vLLM --------------------------------------------------------------------------------
    build("reasoning-tool", "vllm", [("r", "Call the tool."),
          ("tc", 0, "chatcmpl-tool-9a7", "get_weather", None), *PARIS,
          ("finish", "tool_calls")], stop="tool_use", usage=(50, 25, 0), expect_usage=au(50, 25)),
    build("parallel-interleaved", "vllm", [
        ("tc", 0, "chatcmpl-tool-1", "get_weather", None),
        ("tc", 1, "chatcmpl-tool-2", "get_time", None),
        ("a", 0, '{"city": '), ("a", 1, '{"tz": "UTC'), ("a", 0, '"Oslo"}'), ("a", 1, '"}'),
        ("finish", "tool_calls")], stop="tool_use", usage=(60, 30, 0), expect_usage=au(60, 30)),
    build("length", "vllm", [("t", "Truncated"), ("finish", "length")], stop="max_tokens",
          usage=(5, 2, 0), expect_usage=au(5, 2), end="eof"),
    # -- Ollama ------------------------------------------------------------------------------
    build("tool-and-finish-one-chunk", "ollama", [("finish", "tool_calls",
          ("tc", 0, "call_x1y2", "get_weather", '{"city":"Paris"}'))], stop="tool_use",
          usage=None, usage_mode="absent", expect_usage=Z),
    build("stop-with-tools", "ollama", [("t", ""), ("tc", 0, "call_q9", "read_file",
          '{"path":"README.md"}'), ("finish", "stop")], stop="tool_use", usage=(70, 15, 0),
          expect_usage=au(70, 15)),
    build("text-no-usage", "ollama", [("t", "Hi there"), ("finish", "stop")], stop="end_turn",
          usage=None, usage_mode="absent", expect_usage=Z, how="pairs"),
    # -- Gemini (OpenAI-compatible) ----------------------------------------------------------
    build("parallel-missing-index", "gemini", [("t", "Checking both."), ("finish", "stop",
          ("tcs", [(0, "function-call-1", "get_weather", '{"city":"Paris"}'),
                   (1, "function-call-2", "get_weather", '{"city":"Rome"}')]))],
          stop="tool_use", usage=(33, 11, 0), usage_mode="finish", index_mode="missing",
          expect_usage=au(33, 11)),
    build("index-zero-split-args", "gemini", [
        ("tc", 0, "function-call-7", "get_weather", '{"city":'), ("a", 0, '"Lima"}'),
        ("tc", 1, "function-call-8", "get_time", '{"tz":'), ("a", 1, '"America/Lima"}'),
        ("finish", "stop")], stop="tool_use", usage=(21, 13, 0), usage_mode="finish",
        index_mode="zero", expect_usage=au(21, 13)),
    build("no-ids-no-index", "gemini", [("tc", 0, None, "get_weather", '{"city":"Oslo"}'),
          ("tc", 1, None, "get_time", '{}'), ("finish", "stop")], stop="tool_use",
          usage=(8, 4, 0), usage_mode="finish", index_mode="missing", expect_usage=au(8, 4)),
]  # fmt: skip

"""End to end with Claude Code itself: `claude -p` through the real mitmdump, offline, against
fake providers that script a Read tool call. Claude Code reads the file for real and sends the
tool result in a second request of the same conversation; both requests must be routed alike:
the same route (issue 10), and with round-robin the same provider (issue 11).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from claudecode import ClaudeCode, available
from llmrouter.tools._fakecache import PromptCache
from llmrouter.tools.fakeprovider import Behaviour, FakeProvider
from routerproc import RouterProc, provider

pytestmark = pytest.mark.e2e
WORD = "pumpkin-4471"


@pytest.fixture
def note(tmp_path: Path) -> Path:
    assert available(), "Claude Code is not installed: run `make claude`"
    path = tmp_path / "work" / "note.txt"
    path.parent.mkdir()
    path.write_text(f"The secret word is {WORD}.\n")
    return path


def reads(note: Path) -> Behaviour:
    """Call Read on the note, then answer once the tool result comes."""
    return Behaviour(tool_use={"name": "Read", "input": {"file_path": str(note)}})


def tool_round_trip(fake: FakeProvider) -> None:
    """The fake got the question, then the tool result with the file's content."""
    first, second = (q.json for q in fake.requests)
    assert first["stream"] is True and len(first["messages"]) < len(second["messages"])
    result = [b for b in second["messages"][-1]["content"] if b.get("type") == "tool_result"]
    assert result and WORD in str(result[0]["content"])


def run(r: RouterProc, origin: FakeProvider, note: Path, tmp_path: Path) -> dict[str, Any]:
    cc = ClaudeCode(r, origin, tmp_path / "home")
    done = cc.run("Read note.txt and tell me the secret word.", "--allowedTools", "Read",
                  "--max-turns", "4", cwd=note.parent)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = done.json
    assert result["is_error"] is False and result["num_turns"] == 2, result
    return result


def test_claude_code_long_context_route_keeps_both_requests(
    fakes, origin, router, note, tmp_path
) -> None:
    main, big = fakes("main", default=reads(note)), fakes("big", default=reads(note))
    cfg = {
        "providers": {"main": provider(main), "big": provider(big)},
        "profiles": {"default": {
            "hosts": ["localhost"], "providers": ["main"],
            # Claude Code's first call is ~20k tokens: past this threshold from the start
            "long_context_threshold": 5000,
            "routes": {"long_context": {"providers": ["big"], "model": "big-model"}},
        }},
    }  # fmt: skip
    r = router(cfg)
    result = run(r, origin, note, tmp_path)
    assert result["result"].startswith("Hello from big.")
    assert not main.requests and len(big.requests) == 2
    assert all(q.json["model"] == "big-model" for q in big.requests)
    tool_round_trip(big)
    lines = r.wait_lines(2)
    assert [(x["route"], x["provider"], x["model"]) for x in lines] == [
        ("long_context", "big", "big-model")] * 2  # fmt: skip
    # The second estimate rests on what the provider counted for the first.
    assert lines[0]["route_reason"].endswith("(bytes)")
    assert lines[1]["route_reason"].endswith("(usage+bytes)")
    assert lines[0]["conversation"] == lines[1]["conversation"]


def test_claude_code_conversation_stays_on_one_provider(
    fakes, origin, router, note, tmp_path
) -> None:
    fs = {n: fakes(n, default=reads(note), prompt_cache=PromptCache()) for n in ("a", "b", "c")}
    cfg = {
        "providers": {n: provider(f) for n, f in fs.items()},
        "profiles": {"default": {"hosts": ["localhost"], "providers": list(fs),
                                 "strategy": "round-robin"}},
    }  # fmt: skip
    r = router(cfg)
    result = run(r, origin, note, tmp_path)
    [served] = [n for n, f in fs.items() if f.requests]
    assert result["result"].startswith(f"Hello from {served}.")
    assert len(fs[served].requests) == 2
    tool_round_trip(fs[served])
    lines = r.wait_lines(2)
    assert [(x["provider"], x["affinity"]) for x in lines] == [(served, "new"), (served, "bound")]
    assert lines[0]["conversation"] == lines[1]["conversation"]
    assert lines[0]["reason"].startswith("round-robin: conversation rendezvous")
    # The second turn read the prefix the first one wrote at that provider.
    assert lines[0]["cache_write_tokens"] > 0 and lines[1]["cache_read_tokens"] > 0


def test_claude_code_on_an_openai_format_provider(fakes, origin, router, note, tmp_path) -> None:
    """Claude Code served by a strict OpenAI-format provider through translation: the Read
    call streams back as a tool_use block, Claude Code runs it for real, and its result goes
    out as a `tool` message answering that call."""
    oa = fakes("oa", strict=True, default=reads(note))
    cfg = {
        "providers": {"oa": provider(oa, "openai", api_key="${OA_KEY}",
                                     models={"claude-*": "deepseek-chat"})},
        "profiles": {"default": {"hosts": ["localhost"], "providers": ["oa"]}},
    }  # fmt: skip
    r = router(cfg, env={"OA_KEY": "sk-oa-claude-code"})
    result = run(r, origin, note, tmp_path)
    assert result["result"].startswith("Hello from oa.")
    first, second = (q.json for q in oa.requests)
    assert all(q.path == "/v1/chat/completions" for q in oa.requests)
    assert oa.requests[0].headers["authorization"] == "Bearer sk-oa-claude-code"
    assert first["model"] == "deepseek-chat" and first["stream"] is True
    assert first["messages"][0]["role"] == "system" and first["tools"]
    call = second["messages"][-2]["tool_calls"][0]
    tool = second["messages"][-1]
    assert call["function"]["name"] == "Read" and json.loads(call["function"]["arguments"]) == {
        "file_path": str(note)}  # fmt: skip
    assert tool["role"] == "tool" and tool["tool_call_id"] == call["id"]
    assert WORD in str(tool["content"])
    lines = r.wait_lines(2)
    assert [(x["provider"], x["api"], x["translated"], x["outcome"]) for x in lines] == [
        ("oa", "openai", True, "ok")] * 2  # fmt: skip
    assert all(x["model"] == "deepseek-chat" and x["input_tokens"] for x in lines)


def test_claude_code_as_a_team_user(fakes, origin, router, note, tmp_path) -> None:
    """Claude Code sends NAME:TOKEN from its proxy URL on the CONNECT; its tool round trip is
    routed for the user, within a budget, and a wrong token gets no answer at all."""
    from llmrouter.access import hash_token, new_token

    token = new_token()
    fake = fakes("a", default=reads(note))
    price = {"input": 1, "output": 5}
    cfg = {
        "providers": {"a": provider(fake, price=price)},
        "profiles": {"default": {"hosts": ["localhost"], "providers": ["a"]}},
        "access": {"users": {"alice": {"token_sha256": hash_token(token), "profiles": ["default"],
                                       "limits": {"usd_per_day": 5}}}},
    }  # fmt: skip
    r = router(cfg)
    cc = ClaudeCode(r, origin, tmp_path / "home")
    args = ("--allowedTools", "Read", "--max-turns", "4")
    wrong = cc.run("Read note.txt and tell me the secret word.", *args, cwd=note.parent,
                   user="alice:not-her-token", timeout=180)  # fmt: skip
    assert wrong.returncode != 0 and not fake.requests
    done = cc.run("Read note.txt and tell me the secret word.", *args, cwd=note.parent,
                  user=f"alice:{token}")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.json["is_error"] is False and done.json["num_turns"] == 2
    tool_round_trip(fake)
    lines = r.wait_lines(2)
    assert [x["user"] for x in lines] == ["alice", "alice"]
    assert all(x["cost_usd"] and x["charged_usd"] is None for x in lines)

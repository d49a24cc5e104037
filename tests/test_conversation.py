"""Conversation key: each signal, each user_id format, scoping, hashing, compaction, TTL hint."""

from __future__ import annotations

import json
from typing import Any

import claudebodies as cb
import pytest
from llmrouter.routing.conversation import (
    CACHE_TTL,
    CACHE_TTL_1H,
    Conversation,
    conversation_of,
    session_from_user_id,
)
from llmrouter.routing.signals import Signals

CODEX = "01a2183b-4b71-7e01-b19e-7012086487ac"


def sig(body: dict[str, Any], headers: list[tuple[str, str]], api: str = "anthropic") -> Signals:
    raw = cb.encode(body)
    path = "/v1/messages" if api == "anthropic" else "/v1/responses"
    return Signals.of(path, headers, json.loads(raw), raw, api)


def conv(body: dict[str, Any], headers: list[tuple[str, str]], profile: str = "p",
         api: str = "anthropic") -> Conversation:  # fmt: skip
    c = conversation_of(sig(body, headers, api), profile)
    assert c is not None
    # Unparsed, the body's members are read without a full parse: the same key either way.
    raw = cb.encode(body)
    path = "/v1/messages" if api == "anthropic" else "/v1/responses"
    lazy = Signals.of(path, headers, lambda: json.loads(raw), raw, api)
    assert conversation_of(lazy, profile) == c
    assert not lazy.parsed or c.ttl == CACHE_TTL_1H  # only the 1 h TTL hint reads it all
    return c


def no_session_headers() -> list[tuple[str, str]]:
    return [(k, v) for k, v in cb.headers() if k.lower() != "x-claude-code-session-id"]


def bare(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "metadata"}


def test_user_id_formats() -> None:
    assert session_from_user_id(cb.user_id_json()) == cb.SESSION
    assert session_from_user_id(cb.user_id_legacy()) == cb.SESSION
    assert session_from_user_id('{"device_id":"x","account_uuid":""}') is None
    assert session_from_user_id("{not json") is None
    assert session_from_user_id("user_abc") is None
    assert session_from_user_id("") is None
    assert session_from_user_id(None) is None


def test_each_signal_names_its_source() -> None:
    body = cb.main_loop()
    assert conv(body, cb.headers()).source == "header x-claude-code-session-id"
    assert conv(body, no_session_headers()).source == "metadata.user_id"
    legacy = cb.main_loop(user_id=cb.user_id_legacy())
    assert conv(legacy, no_session_headers()).source == "metadata.user_id"
    codex = cb.codex_turn()
    assert conv(codex, cb.codex_headers(), api="openai").source == "header session-id"
    assert conv(codex, [("session_id", CODEX)], api="openai").source == "header session_id"
    assert conv(codex, [], api="openai").source == "prompt_cache_key"
    assert conv(bare(body), no_session_headers()).source == "prefix"


def test_the_session_id_signals_agree() -> None:
    """Header, either user_id format, Codex header and prompt_cache_key carrying one session id
    key the same conversation: a request that lacks one signal still finds its binding."""
    keys = {
        conv(cb.main_loop(), cb.headers()).base,
        conv(cb.main_loop(), no_session_headers()).base,
        conv(cb.main_loop(user_id=cb.user_id_legacy()), no_session_headers()).base,
        conv(bare(cb.main_loop()), [("session-id", cb.SESSION)]).base,
        conv(bare(cb.main_loop()) | {"prompt_cache_key": cb.SESSION}, []).base,
    }
    assert len(keys) == 1


def test_first_signal_present_wins() -> None:
    other = "99999999-2306-4e8e-a6ba-4b737431ad3c"
    a = conv(cb.main_loop(session=other), cb.headers())  # header: SESSION, user_id: other
    assert a.base == conv(cb.main_loop(), cb.headers()).base
    assert a.base != conv(cb.main_loop(session=other), cb.headers(other)).base


def test_key_is_a_hash_never_the_raw_value() -> None:
    c = conv(cb.main_loop(), cb.headers())
    assert len(c.base) == 32 and int(c.base, 16) >= 0
    assert cb.SESSION not in c.base and cb.SESSION not in c.key("background")
    assert cb.SESSION not in repr(c)
    assert str(c) == c.base[:12]


def test_scoped_by_profile_route_and_agent() -> None:
    main = conv(cb.main_loop(), cb.headers())
    assert main.base != conv(cb.main_loop(), cb.headers(), profile="q").base
    assert main.key(None) == main.base
    assert main.key("background") != main.key("think") != main.base
    sub = conv(cb.main_loop(), cb.headers(**{"x-claude-code-agent-id": cb.AGENT}))
    assert sub.subagent and not main.subagent
    assert sub.base != main.base
    other = conv(cb.main_loop(), cb.headers(**{"x-claude-code-agent-id": "b000000000000001"}))
    assert other.base != sub.base


def test_codex_child_thread_is_its_own_scope() -> None:
    root = conv(cb.codex_turn(), cb.codex_headers(), api="openai")
    child_headers = cb.codex_headers(thread="0000child-thread", **{
        "x-codex-parent-thread-id": CODEX, "x-openai-subagent": "collab_spawn"})  # fmt: skip
    child = conv(cb.codex_turn(), child_headers, api="openai")
    assert child.subagent and not root.subagent
    assert child.base != root.base
    assert child.source == root.source == "header session-id"


def test_prefix_ignores_attribution_reminders_and_cache_control() -> None:
    a = bare(cb.main_loop())
    b = bare(cb.main_loop(attribution="x-anthropic-billing-header: cc_version=2.1.197.7af;"))
    b["messages"][0]["content"][0]["text"] = (
        "<system-reminder>\nToday's date is 2026-11-27.\n</system-reminder>\n"
    )
    c = bare(cb.main_loop(5))  # later turn: cache_control moved to the latest tool result
    keys = {conv(x, no_session_headers()).base for x in (a, b, c)}
    assert len(keys) == 1
    d = bare(cb.main_loop(prompt="another task"))
    assert conv(d, no_session_headers()).base not in keys


def test_prefix_of_openai_chat() -> None:
    def chat(first: str, *more: str) -> dict[str, Any]:
        msgs = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": first}]
        msgs += [{"role": "assistant", "content": m} for m in more]
        return {"model": "gpt-5", "messages": msgs}

    one = conv(chat("hi"), [], api="openai")
    assert one.source == "prefix"
    assert one.base == conv(chat("hi", "hello", "more"), [], api="openai").base
    assert one.base != conv(chat("bye"), [], api="openai").base


def test_nothing_to_key_on() -> None:
    assert conversation_of(sig({"model": "m", "messages": []}, []), "p") is None
    assert conversation_of(sig({}, []), "p") is None


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, False),
        ({"x-claude-code-compaction": "true"}, True),
        ({"x-claude-code-compaction": "0"}, False),
        ({"x-claude-code-request-class": "compaction"}, True),
        ({"x-claude-code-request-class": "main"}, False),
    ],
)
def test_compaction_signal(extra: dict[str, str], expected: bool) -> None:
    assert conv(cb.main_loop(), cb.headers(**extra)).compaction is expected


def test_codex_compaction_signal() -> None:
    c = conv(cb.codex_turn(), cb.codex_headers(**{"x-openai-subagent": "compact"}), api="openai")
    assert c.compaction


def test_cache_ttl_hint() -> None:
    assert conv(cb.main_loop(), cb.headers()).ttl == CACHE_TTL == 300
    assert conv(cb.main_loop(ttl="1h"), cb.headers()).ttl == CACHE_TTL_1H == 3600
    # The words inside a message are escaped in JSON: never mistaken for the setting.
    talk = cb.main_loop(prompt='set cache_control {"ttl": "1h"} please')
    assert conv(talk, cb.headers()).ttl == CACHE_TTL


def test_a_body_the_partial_read_refuses_is_keyed_from_the_full_parse() -> None:
    """A lone surrogate (valid JSON, refused by msgspec) or a non-object body: same answer as
    the full parse, no error."""
    raw = b'{"system": "you are \\ud800 here", "messages": [{"role": "user", "content": "hi"}]}'
    parsed = Signals.of("/v1/messages", [], json.loads(raw), raw, "anthropic")
    lazy = Signals.of("/v1/messages", [], lambda: json.loads(raw), raw, "anthropic")
    c = conversation_of(lazy, "p")
    assert c is not None and c == conversation_of(parsed, "p") and c.source == "prefix"
    assert conversation_of(Signals.of("/v1/messages", [], lambda: None, b"[1]", "anthropic"),
                           "p") is None  # fmt: skip

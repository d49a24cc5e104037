"""End to end across APIs: real mitmdump + router, the official SDKs through HTTPS_PROXY, and
strict fake providers of the OTHER API (they refuse what the real APIs refuse: an unknown chat
field, unpaired tool calls, a thinking signature Anthropic did not issue). The client always
gets its own API's format; the JSONL says which API served (`api`) and `translated`.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest
from llmrouter.tools._fakeanthropic import sign
from llmrouter.tools.fakeprovider import Behaviour
from routerproc import anthropic_client, openai_client, provider

pytestmark = pytest.mark.e2e

READ = {"name": "Read", "input": {"file_path": "/tmp/notes.txt", "limit": 20}}
READ_TOOL = {
    "name": "Read",
    "description": "Read a file",
    "input_schema": {
        "type": "object",
        "properties": {"file_path": {"type": "string"}, "limit": {"type": "integer"}},
        "required": ["file_path"],
    },
}
OA_KEY, AN_KEY = "sk-oa-secret-1", "sk-an-secret-2"
ENV = {"OA_KEY": OA_KEY, "AN_KEY": AN_KEY}


def oa_provider(fake: Any, **extra: Any) -> dict[str, Any]:
    return provider(fake, "openai", api_key="${OA_KEY}",
                    models={"claude-*": "gpt-4o-mini"}, **extra)  # fmt: skip


def an_provider(fake: Any, **extra: Any) -> dict[str, Any]:
    return provider(fake, "anthropic", api_key="${AN_KEY}",
                    models={"gpt-*": "claude-haiku-4-5"}, **extra)  # fmt: skip


def one_profile(providers: dict[str, Any], **profile: Any) -> dict[str, Any]:
    prof = {"hosts": ["localhost"], "providers": list(providers), **profile}
    return {"providers": providers, "profiles": {"default": prof}}


def blocks(msg: Any) -> list[dict[str, Any]]:
    return [b.model_dump(exclude_none=True) for b in msg.content]


# -- an Anthropic client, an OpenAI-format provider ---------------------------------------------


def test_anthropic_sdk_streams_tools_over_two_turns_from_an_openai_provider(
    fakes, origin, router
) -> None:
    oa = fakes("oa", strict=True, default=Behaviour(tool_use=READ, deltas=4, input_tokens=40,
                                                    cache_read_tokens=30))  # fmt: skip
    r = router(one_profile({"oa": oa_provider(oa)}), env=ENV)
    client = anthropic_client(r, origin)
    ask = [{"role": "user", "content": "Read the notes."}]
    kw: dict[str, Any] = {"model": "claude-sonnet-4-6", "max_tokens": 300, "system": "Be brief.",
                          "tools": [READ_TOOL], "metadata": {"user_id": "u-1"}}  # fmt: skip
    with client.messages.stream(messages=ask, **kw) as s:
        kinds = [e.type for e in s]
        first = s.get_final_message()
    [call] = first.content
    assert call.type == "tool_use" and call.name == "Read" and call.input == READ["input"]
    assert first.stop_reason == "tool_use"
    assert kinds.count("input_json") == 4  # the arguments streamed as they came
    # Anthropic's input_tokens leave the cache out; the provider's prompt_tokens count it.
    assert (first.usage.input_tokens, first.usage.cache_read_input_tokens) == (10, 30)
    assert first.usage.output_tokens == 4

    turn = [*ask, {"role": "assistant", "content": blocks(first)},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                          "content": "the notes say 42"}]}]  # fmt: skip
    with client.messages.stream(messages=turn, **kw) as s:
        text = "".join(s.text_stream)
        second = s.get_final_message()
    assert text.startswith("Hello from oa.") and second.stop_reason == "end_turn"

    q1, q2 = oa.requests
    assert q1.path == "/v1/chat/completions" and q2.path == "/v1/chat/completions"
    h = q1.headers
    assert h["authorization"] == f"Bearer {OA_KEY}"
    assert "x-api-key" not in h and "anthropic-version" not in h and "client-key" not in str(h)
    assert q1.json["model"] == "gpt-4o-mini" and q1.json["max_tokens"] == 300
    assert q1.json["stream_options"] == {"include_usage": True} and q1.json["user"] == "u-1"
    assert q1.json["messages"][0] == {"role": "system", "content": "Be brief."}
    assert q1.json["tools"][0]["function"]["name"] == "Read"
    assistant, tool = q2.json["messages"][-2:]
    assert assistant["tool_calls"][0]["id"] == call.id
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == READ["input"]
    assert tool == {"role": "tool", "tool_call_id": call.id, "content": "the notes say 42"}

    lines = r.wait_lines(2)
    assert [(x["provider"], x["api"], x["translated"], x["outcome"]) for x in lines] == [
        ("oa", "openai", True, "ok")] * 2  # fmt: skip
    assert lines[0]["model"] == "gpt-4o-mini" and lines[0]["requested_model"] == "claude-sonnet-4-6"
    # The provider's own figures: all input counted, the cache read among it.
    assert (lines[0]["input_tokens"], lines[0]["cache_read_tokens"]) == (40, 30)
    assert lines[0]["output_tokens"] == 4 and lines[0]["cost_usd"] is not None
    assert OA_KEY not in r.jsonl_path.read_text()


def test_a_cut_after_commit_ends_with_the_anthropic_error_event(fakes, origin, router) -> None:
    oa = fakes("oa", default=Behaviour(kind="cut", deltas=6, after_deltas=2))
    r = router(one_profile({"oa": oa_provider(oa)}), env=ENV)
    client = anthropic_client(r, origin)
    got: list[str] = []
    stream = client.messages.stream(model="claude-x", max_tokens=50,
                                    messages=[{"role": "user", "content": "hi"}])  # fmt: skip
    with pytest.raises(anthropic.APIStatusError) as e, stream as s:  # never a quiet success
        got.extend(s.text_stream)
    assert "".join(got) == "Hello from"
    assert "upstream stream interrupted" in str(e.value)
    [line] = r.wait_lines(1)
    assert (line["outcome"], line["translated"], line["api"]) == ("truncated", True, "openai")


def test_errors_reach_the_client_in_its_own_format(fakes, origin, router) -> None:
    oa = fakes("oa", default=Behaviour(kind="status", status=429, headers={"retry-after": "9"}))
    r = router(one_profile({"oa": oa_provider(oa)}), env=ENV)
    with pytest.raises(anthropic.RateLimitError) as e:
        anthropic_client(r, origin).messages.create(
            model="claude-x", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    body = json.loads(e.value.response.content)
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert "Too Many Requests (fake provider oa)" in body["error"]["message"]
    assert e.value.response.headers["content-type"] == "application/json"
    assert e.value.response.headers["retry-after"] == "9"


# -- an OpenAI client, an Anthropic-format provider ---------------------------------------------


def test_openai_sdk_from_an_anthropic_provider(fakes, origin, router) -> None:
    an = fakes("an", strict=True, default=Behaviour(input_tokens=10, cache_read_tokens=5,
                                                    cache_write_tokens=2))  # fmt: skip
    r = router(one_profile({"an": an_provider(an)}), env=ENV)
    client = openai_client(r, origin)
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    done = client.chat.completions.create(model="gpt-4o", messages=chat)
    assert done.choices[0].message.content == "Hello from an."
    assert done.choices[0].finish_reason == "stop" and done.object == "chat.completion"
    assert done.usage is not None and done.usage.prompt_tokens == 17  # input + cache read + write
    assert done.usage.prompt_tokens_details.cached_tokens == 5

    q = an.requests[0]
    assert q.path == "/v1/messages" and q.headers["x-api-key"] == AN_KEY
    assert q.headers["anthropic-version"] == "2023-06-01" and "authorization" not in q.headers
    assert q.json["system"] == "Be brief." and q.json["model"] == "claude-haiku-4-5"
    assert q.json["max_tokens"] == 4096  # Anthropic needs one; the client sent none

    an.set_default(Behaviour(tool_use=READ, deltas=3, thinking="Which file?"))
    tool = {
        "type": "function",
        "function": {"name": "Read", "parameters": READ_TOOL["input_schema"]},
    }
    with client.chat.completions.stream(model="gpt-4o", messages=chat, tools=[tool],
                                        stream_options={"include_usage": True}) as s:  # fmt: skip
        for _ in s:
            pass
        final = s.get_final_completion()
    msg = final.choices[0].message
    assert final.choices[0].finish_reason == "tool_calls"
    [call] = msg.tool_calls or []
    assert call.function.name == "Read" and json.loads(call.function.arguments) == READ["input"]
    assert (msg.model_extra or {}).get("reasoning_content") == "Which file?"
    assert final.usage is not None and final.usage.completion_tokens == 3

    lines = r.wait_lines(2)
    assert [(x["api"], x["translated"], x["stream"], x["outcome"]) for x in lines] == [
        ("anthropic", True, False, "ok"), ("anthropic", True, True, "ok")]  # fmt: skip
    assert (lines[0]["input_tokens"], lines[0]["cache_read_tokens"]) == (17, 5)


def test_responses_and_embeddings_are_never_translated(fakes, origin, router) -> None:
    an = fakes("an")
    r = router(one_profile({"an": an_provider(an)}), env=ENV)
    client = openai_client(r, origin)
    with pytest.raises(openai.APIStatusError) as e:
        client.responses.create(model="gpt-4o", input="hi")
    assert e.value.status_code == 502 and not an.requests
    assert "/v1/responses is never translated" in str(e.value)


# -- failover across APIs, and back ------------------------------------------------------------


def test_a_conversation_fails_over_to_openai_and_comes_back_to_anthropic(
    fakes, origin, router
) -> None:
    """Turn 2 fails over from Anthropic to an OpenAI-format provider, which reasons and calls a
    tool; turn 3 carries that reasoning back as a thinking block with no signature, and goes
    to Anthropic again. The strict Anthropic fake rejects a request that still holds it (the
    control at the end shows it would), and a tool loop with thinking on that does not start
    with thinking; the router drops the block and, for this request, thinking."""
    an = fakes("an", strict=True, default=Behaviour(thinking="Anthropic thinks."))
    oa = fakes("oa", strict=True, default=Behaviour(thinking="The OpenAI side reasons.",
                                                    tool_use=READ))  # fmt: skip
    cfg = one_profile({"an": an_provider(an), "oa": oa_provider(oa)},
                      affinity=False)  # each turn starts at the configured order  # fmt: skip
    cfg["health"] = {"backoff_initial": 0.001, "backoff_max": 0.001}  # Anthropic is back at once
    r = router(cfg, env=ENV)
    client = anthropic_client(r, origin)
    kw: dict[str, Any] = {"model": "claude-sonnet-4-6", "max_tokens": 2048, "tools": [READ_TOOL],
                          "thinking": {"type": "enabled", "budget_tokens": 1024}}  # fmt: skip

    def turn(messages: list[dict[str, Any]]) -> Any:
        with client.messages.stream(messages=messages, **kw) as s:
            return s.get_final_message()

    convo: list[dict[str, Any]] = [{"role": "user", "content": "hi"}]
    first = turn(convo)
    assert [b.type for b in first.content] == ["thinking", "text"]
    assert first.content[0].signature == sign("Anthropic thinks.")

    an.push(Behaviour(kind="status", status=529))  # Anthropic is overloaded for turn 2
    convo += [{"role": "assistant", "content": blocks(first)},
              {"role": "user", "content": "Read the notes."}]  # fmt: skip
    second = turn(convo)
    think, call = second.content
    assert think.type == "thinking" and think.thinking == "The OpenAI side reasons."
    assert think.signature == "" and call.type == "tool_use"

    convo += [{"role": "assistant", "content": blocks(second)},
              {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                            "content": "42"}]}]  # fmt: skip
    third = turn(convo)
    assert third.content[-1].text.startswith("Hello from an.")

    lines = r.wait_lines(4)
    assert [(x["provider"], x["api"], x["translated"], x["outcome"]) for x in lines] == [
        ("an", "anthropic", False, "ok"), ("an", "anthropic", False, "http_error"),
        ("oa", "openai", True, "ok"), ("an", "anthropic", False, "ok")]  # fmt: skip
    sent = an.requests[-1].json
    history = [b for m in sent["messages"] if m["role"] == "assistant" for b in m["content"]]
    assert [b["type"] for b in history] == ["thinking", "text", "tool_use"]  # the signed one kept
    assert history[0]["signature"] == sign("Anthropic thinks.") and "thinking" not in sent
    # The control: the client's own turn 3, sent to Anthropic as it is, is refused.
    with pytest.raises(anthropic.BadRequestError) as refused:
        direct = anthropic.Anthropic(base_url=an.url, api_key="k", max_retries=0)
        direct.messages.create(messages=convo, **kw)
    assert "Invalid `signature` in `thinking` block" in refused.value.body["error"]["message"]


def test_translate_false_skips_the_other_api_with_the_reason(fakes, origin, router) -> None:
    an = fakes("an", default=Behaviour(kind="status", status=529))
    oa = fakes("oa")
    r = router(one_profile({"an": an_provider(an), "oa": oa_provider(oa)}, translate=False),
               env=ENV)  # fmt: skip
    with pytest.raises(anthropic.InternalServerError):
        anthropic_client(r, origin).messages.create(
            model="claude-x", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    assert not oa.requests
    [line] = r.wait_lines(1)
    assert line["skipped"] == [
        {
            "provider": "oa",
            "reason": "translate",
            "detail": "openai provider, anthropic request; translate: false",
        }
    ]

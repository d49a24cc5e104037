"""The fake provider's reasoning (signed thinking, reasoning_content) and its strict mode, which
refuses what the real APIs refuse, so that translation tests have teeth. Driven by the official
SDKs pointed straight at the fake."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from llmrouter.tools._fakeanthropic import sign
from llmrouter.tools.fakeprovider import Behaviour, FakeProvider, FakeProviderPool

MSG: list[dict[str, Any]] = [{"role": "user", "content": "hi"}]
THINK = "Let me weigh the options."


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def pool() -> Iterator[FakeProviderPool]:
    with FakeProviderPool() as p:
        yield p


@pytest.fixture
def strict(pool: FakeProviderPool) -> Iterator[FakeProvider]:
    fake = pool.start("s", strict=True, default=Behaviour(thinking=THINK))
    yield fake
    pool.stop(fake)


def claude(fake: FakeProvider) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="k", base_url=fake.url, max_retries=0)


def gpt(fake: FakeProvider) -> openai.OpenAI:
    return openai.OpenAI(api_key="k", base_url=fake.url + "/v1", max_retries=0)


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_thinking_is_signed_and_accepted_back(strict: FakeProvider, stream: bool) -> None:
    client = claude(strict)
    if stream:
        with client.messages.stream(model="m", max_tokens=50, messages=MSG) as s:
            msg = s.get_final_message()
    else:
        msg = client.messages.create(model="m", max_tokens=50, messages=MSG)
    think, text = msg.content
    assert think.type == "thinking" and think.thinking == THINK
    assert think.signature == sign(THINK) and text.type == "text"
    turn = [*MSG, {"role": "assistant", "content": [b.model_dump() for b in msg.content]},
            {"role": "user", "content": "and then?"}]  # fmt: skip
    again = client.messages.create(model="m", max_tokens=50, messages=turn)
    assert again.content[1].text.startswith("Hello from s.")


@pytest.mark.parametrize("signature", ["", "c2lnbmVkIGVsc2V3aGVyZQ=="])
def test_anthropic_refuses_a_signature_it_did_not_issue(
    strict: FakeProvider, signature: str
) -> None:
    turn = [*MSG, {"role": "assistant", "content": [
        {"type": "thinking", "thinking": THINK, "signature": signature},
        {"type": "text", "text": "hi"}]}, {"role": "user", "content": "go on"}]  # fmt: skip
    with pytest.raises(anthropic.BadRequestError) as e:
        claude(strict).messages.create(model="m", max_tokens=50, messages=turn)
    assert e.value.body["error"]["message"] == (
        "messages.1.content.0: Invalid `signature` in `thinking` block"
    )
    assert len(strict.requests) == 1  # refused: nothing was answered


def test_anthropic_tool_loop_with_thinking_on_must_start_with_thinking(
    strict: FakeProvider,
) -> None:
    call = {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "x"}
    turn = [*MSG, {"role": "assistant", "content": [call]}, {"role": "user", "content": [result]}]
    client = claude(strict)
    with pytest.raises(anthropic.BadRequestError) as e:
        client.messages.create(model="m", max_tokens=2048, messages=turn,
                               thinking={"type": "enabled", "budget_tokens": 1024})  # fmt: skip
    assert "must start with a thinking block" in e.value.body["error"]["message"]
    # without thinking, the same loop is fine
    assert client.messages.create(model="m", max_tokens=50, messages=turn).content


@pytest.mark.parametrize("stream", [False, True])
def test_chat_reasoning_content(strict: FakeProvider, stream: bool) -> None:
    client = gpt(strict)
    if stream:
        chunks = list(client.chat.completions.create(model="m", messages=MSG, stream=True))
        reasoning = "".join((c.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
                            for c in chunks if c.choices)  # fmt: skip
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        msg = client.chat.completions.create(model="m", messages=MSG).choices[0].message
        reasoning, text = (msg.model_extra or {})["reasoning_content"], msg.content or ""
    assert reasoning == THINK and text == "Hello from s."


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"thinking": {"type": "enabled"}}, "Unrecognized request argument supplied: thinking"),
        ({"stream_options": {"include_usage": True}}, "only allowed when 'stream' is enabled"),
        ({"messages": [{"role": "user", "content": [{"type": "tool_result"}]}]},
         "Invalid value: 'tool_result'"),
        ({"messages": [*MSG, {"role": "assistant", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "user", "content": "next"}]}, "did not have response messages: c1"),
        ({"messages": [*MSG, {"role": "tool", "tool_call_id": "c9", "content": "x"}]},
         "must be a response to a preceeding message with 'tool_calls'"),
    ],
)  # fmt: skip
def test_chat_refuses_what_openai_refuses(
    strict: FakeProvider, extra: dict[str, Any], message: str
) -> None:
    body = {"model": "m", "messages": MSG, **extra}
    known = {k: body.pop(k) for k in ("model", "messages", "stream_options") if k in body}
    with pytest.raises(openai.BadRequestError) as e:
        gpt(strict).chat.completions.create(**known, extra_body=body)
    assert message in str(e.value)


def test_a_lenient_fake_takes_anything(pool: FakeProviderPool) -> None:
    fake = pool.start("l")
    try:
        turn = [*MSG, {"role": "assistant", "content": [
            {"type": "thinking", "thinking": THINK, "signature": "x"}]},
            {"role": "user", "content": "go on"}]  # fmt: skip
        assert claude(fake).messages.create(model="m", max_tokens=5, messages=turn).content
    finally:
        pool.stop(fake)

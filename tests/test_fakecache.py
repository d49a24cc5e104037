"""The fake provider's prompt cache: reads for a prefix the same conversation wrote within its
TTL, writes otherwise; Anthropic's breakpoints and OpenAI's automatic caching."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import claudebodies as cb
import openai
import pytest
from llmrouter.tools._fakecache import MIN_TOKENS, OPENAI_STEP, Cached, PromptCache
from llmrouter.tools.fakeprovider import Behaviour, FakeProvider, FakeProviderPool

HEADERS = {"x-claude-code-session-id": cb.SESSION}
OTHER = {"x-claude-code-session-id": "another-session"}


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(clock: Clock) -> PromptCache:
    return PromptCache(clock=clock)


def total(c: Cached) -> int:
    return c.input_tokens + c.cache_read + c.cache_write


def test_first_turn_writes_then_the_next_turn_reads(cache: PromptCache) -> None:
    first = cache.account("anthropic", cb.main_loop(0), HEADERS)
    assert first.cache_read == 0 and first.cache_write > 10_000
    # After the breakpoint on the last user block: only the `system` message that follows it
    # (the fake counts a block's JSON bytes / 4).
    trailing = cb.main_loop(0)["messages"][-1]
    assert trailing["role"] == "system"
    assert first.input_tokens == len(json.dumps(trailing["content"])) // 4
    second = cache.account("anthropic", cb.main_loop(1), HEADERS)
    # The whole first prompt is read (its breakpoint moved on, the prefix is still there).
    assert second.cache_read == first.cache_write
    assert second.cache_write > 0
    third = cache.account("anthropic", cb.main_loop(2), HEADERS)
    assert third.cache_read == second.cache_read + second.cache_write
    assert total(third) > total(second) > total(first)


def test_same_request_again_reads_everything(cache: PromptCache) -> None:
    a = cache.account("anthropic", cb.main_loop(3), HEADERS)
    b = cache.account("anthropic", cb.main_loop(3), HEADERS)
    assert b.cache_read == a.cache_write and b.cache_write == 0


def test_another_conversation_does_not_read_it(cache: PromptCache) -> None:
    cache.account("anthropic", cb.main_loop(2), HEADERS)
    assert cache.account("anthropic", cb.main_loop(2), OTHER).cache_read == 0
    # The conversation may also be named by metadata.user_id alone.
    cache.account("anthropic", cb.main_loop(2, session="s2"), {})
    assert cache.account("anthropic", cb.main_loop(3, session="s2"), {}).cache_read > 0


def test_ttl_expires_and_a_hit_refreshes_it(cache: PromptCache, clock: Clock) -> None:
    cache.account("anthropic", cb.main_loop(0), HEADERS)
    clock.t += 200
    assert cache.account("anthropic", cb.main_loop(0), HEADERS).cache_read > 0  # refreshed
    clock.t += 250  # 450 s after the write, 250 s after the hit
    assert cache.account("anthropic", cb.main_loop(0), HEADERS).cache_read > 0
    clock.t += 301
    miss = cache.account("anthropic", cb.main_loop(0), HEADERS)
    assert miss.cache_read == 0 and miss.cache_write > 0


def test_one_hour_breakpoints(cache: PromptCache, clock: Clock) -> None:
    cache.account("anthropic", cb.main_loop(0, ttl="1h"), HEADERS)
    clock.t += 3000
    assert cache.account("anthropic", cb.main_loop(0, ttl="1h"), HEADERS).cache_read > 0


def test_no_breakpoint_no_cache(cache: PromptCache) -> None:
    plain = {"model": "m", "messages": [{"role": "user", "content": "x" * 20_000}]}
    cache.account("anthropic", plain, HEADERS)
    again = cache.account("anthropic", plain, HEADERS)
    assert again == Cached(again.input_tokens, 0, 0)


def chat(n: int) -> dict[str, Any]:
    msgs = [{"role": "system", "content": "rules " * 1500}]
    for i in range(n):
        msgs += [{"role": "user", "content": f"q{i} " * 300}, {"role": "assistant", "content": "a"}]
    return {"model": "gpt-5", "messages": msgs, "prompt_cache_key": "conv-1"}


def test_openai_caches_automatically_in_steps(cache: PromptCache) -> None:
    first = cache.account("openai", chat(1), {})
    assert first.cache_read == 0 and first.cache_write == 0 and first.input_tokens > MIN_TOKENS
    second = cache.account("openai", chat(2), {})
    assert second.input_tokens > first.input_tokens  # the total includes the cached part
    assert MIN_TOKENS <= second.cache_read <= first.input_tokens
    assert second.cache_read % OPENAI_STEP == 0
    assert cache.account("openai", chat(2) | {"prompt_cache_key": "other"}, {}).cache_read == 0


def test_openai_short_prompts_are_not_cached(cache: PromptCache) -> None:
    short = {"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]}
    cache.account("openai", short, {})
    assert cache.account("openai", short, {}).cache_read == 0


# -- through the fake provider, with the official SDKs --------------------------------------


@pytest.fixture(scope="module")
def pool() -> Iterator[FakeProviderPool]:
    with FakeProviderPool() as p:
        yield p


@pytest.fixture
def fake(pool: FakeProviderPool, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    provider = pool.start("c", prompt_cache=PromptCache())
    yield provider
    pool.stop(provider)


def send(client: anthropic.Anthropic, body: dict[str, Any], stream: bool) -> Any:
    keys = ("model", "max_tokens", "system", "messages", "tools", "metadata")
    kwargs = {k: body[k] for k in keys} | {"max_tokens": 1024}
    extra = {"thinking": body["thinking"], "output_config": body["output_config"]}
    if not stream:
        return client.messages.create(**kwargs, extra_body=extra, extra_headers=HEADERS).usage
    with client.messages.stream(**kwargs, extra_body=extra, extra_headers=HEADERS) as s:
        return s.get_final_message().usage


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_sdk_sees_writes_then_reads(fake: FakeProvider, stream: bool) -> None:
    with anthropic.Anthropic(base_url=fake.url, api_key="k", max_retries=0) as client:
        first = send(client, cb.main_loop(0), stream)
        second = send(client, cb.main_loop(1), stream)
    assert first.cache_read_input_tokens == 0
    assert first.cache_creation_input_tokens > 10_000
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.cache_creation_input_tokens > 0


def test_behaviour_token_counts_win(fake: FakeProvider) -> None:
    fake.push(Behaviour(input_tokens=7, cache_read_tokens=5, cache_write_tokens=3))
    with anthropic.Anthropic(base_url=fake.url, api_key="k", max_retries=0) as client:
        usage = send(client, cb.main_loop(0), stream=False)
    assert (usage.input_tokens, usage.cache_read_input_tokens,
            usage.cache_creation_input_tokens) == (7, 5, 3)  # fmt: skip


def test_openai_sdk_sees_cached_tokens(fake: FakeProvider) -> None:
    with openai.OpenAI(base_url=fake.url + "/v1", api_key="k", max_retries=0) as client:
        body = chat(1)
        client.chat.completions.create(**body)
        usage = client.chat.completions.create(**chat(2)).usage
        resp = client.responses.create(model="gpt-5", input=body["messages"],
                                       prompt_cache_key="conv-1")  # fmt: skip
    assert usage is not None and usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens >= MIN_TOKENS
    assert resp.usage is not None
    # Same conversation, same messages as the first chat call: read from the cache.
    assert resp.usage.input_tokens_details.cached_tokens >= MIN_TOKENS

"""Token estimate, the usage history it rests on, and the capability filters."""

from __future__ import annotations

import json
from typing import Any

import claudebodies as cb
import pytest
from llmrouter.config import parse_config
from llmrouter.routing.capabilities import capable, unservable
from llmrouter.routing.estimate import (
    BYTES_PER_TOKEN,
    IMAGE_TOKENS,
    Estimate,
    Reported,
    UsageBook,
    estimate,
    kilo,
    thread_key,
)
from llmrouter.routing.routes import has_image
from llmrouter.routing.signals import Signals


def sig(body: dict[str, Any], api: str = "anthropic") -> Signals:
    raw = cb.encode(body)
    return Signals.of("/v1/messages", cb.headers(), json.loads(raw), raw, api)


def test_bytes_alone() -> None:
    s = sig(cb.main_loop(5))
    e = estimate(s)
    assert e == Estimate(round(len(s.body) / BYTES_PER_TOKEN), "bytes")
    assert str(e) == f"est {kilo(e.tokens)} (bytes)"


def test_usage_plus_new_bytes() -> None:
    before, after = sig(cb.main_loop(5)), sig(cb.main_loop(6))
    last = Reported(tokens=31_000, size=len(before.body), messages=len(before.messages))
    e = estimate(after, last)
    added = len(after.body) - len(before.body)
    assert e == Estimate(31_000 + round(added / BYTES_PER_TOKEN), "usage+bytes")


def test_history_ignored_when_the_conversation_shrank() -> None:
    """A compaction (fewer messages, fewer bytes), or a side call under the same key."""
    big, small = sig(cb.main_loop(30)), sig(cb.main_loop(2))
    last = Reported(tokens=90_000, size=len(big.body), messages=len(big.messages))
    assert estimate(small, last).source == "bytes"


def test_images_count_flat_not_by_their_base64() -> None:
    plain, pictured = sig(cb.main_loop(2)), sig(cb.main_loop(2, image_turns=(2,)))
    grown = estimate(pictured).tokens - estimate(plain).tokens
    # The 20 KB PNG is ~27 KB of base64: ~7.6k tokens by bytes, IMAGE_TOKENS by the estimate.
    assert abs(grown - IMAGE_TOKENS) < 100
    # With history, only the images of the new messages are counted.
    before, after = sig(cb.main_loop(1, image_turns=(1,))), sig(cb.main_loop(2, image_turns=(1, 2)))
    last = Reported(tokens=20_000, size=len(before.body), messages=len(before.messages))
    e = estimate(after, last)
    assert e.source == "usage+bytes"
    no_image_growth = len(after.body) - len(before.body) - len(cb.png()["source"]["data"])
    assert no_image_growth > 0
    assert e.tokens == 20_000 + round(no_image_growth / BYTES_PER_TOKEN) + IMAGE_TOKENS


def test_openai_data_url_images() -> None:
    url = "data:image/png;base64," + cb.png()["source"]["data"]
    body = {"model": "gpt-5", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": url}}]}]}  # fmt: skip
    e = estimate(sig(body, "openai"))
    assert IMAGE_TOKENS <= e.tokens < IMAGE_TOKENS + 100


def test_documents_count_at_least_an_image() -> None:
    doc = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                          "data": "A" * 400_000}}  # fmt: skip
    body = {"model": "m", "messages": [{"role": "user", "content": [doc]}]}
    assert estimate(sig(body)).tokens == pytest.approx(300_000 / 25, abs=50)


@pytest.mark.parametrize(("n", "text"), [(950, "950"), (1234, "1.2k"), (81_234, "81k")])
def test_kilo(n: int, text: str) -> None:
    assert kilo(n) == text


def test_usage_book_lru() -> None:
    book = UsageBook(cap=2)
    r = Reported(1, 2, 3)
    book.put("a", r)
    book.put("b", r)
    assert book.get("a") == r  # a used: b is the oldest
    book.put("c", r)
    assert len(book) == 2
    assert book.get("b") is None and book.get("a") == r and book.get("c") == r


def test_thread_key_separates_side_calls_of_one_session() -> None:
    main, search = sig(cb.main_loop()), sig(cb.web_search_call())
    haiku = sig(cb.haiku_side_call())
    keys = {thread_key("conv", s) for s in (main, search, haiku)}
    assert len(keys) == 3
    assert thread_key("conv", main) == thread_key("conv", sig(cb.main_loop(9)))


# -- capabilities ------------------------------------------------------------------------------

PROVIDERS = parse_config(
    {
        "providers": {
            "small": {"base_url": "https://s.example.com", "api": "anthropic",
                      "context_window": 32_000},
            "text": {"base_url": "https://t.example.com", "api": "anthropic", "vision": False},
            "big": {"base_url": "https://b.example.com", "api": "anthropic",
                    "context_window": 1_000_000},
        },
        "profiles": {"p": {"hosts": ["h"], "providers": ["small", "text", "big"]}},
    },
    {},
).providers  # fmt: skip


def test_context_window_filter() -> None:
    kept, skipped = capable(["small", "text", "big"], PROVIDERS, tokens=81_000, image=False)
    assert kept == ["text", "big"]
    assert skipped == [{"provider": "small", "reason": "context", "detail": "est 81k > window 32k"}]


def test_vision_filter() -> None:
    kept, skipped = capable(["small", "text", "big"], PROVIDERS, tokens=1000, image=True)
    assert kept == ["small", "big"]
    assert skipped == [{"provider": "text", "reason": "vision", "detail": "request has an image"}]


def test_everything_filtered_says_why() -> None:
    kept, skipped = capable(["small", "text"], PROVIDERS, tokens=40_000, image=True)
    assert kept == []
    assert unservable(skipped) == (
        "no provider can serve this request: small: context (est 40k > window 32k); "
        "text: vision (request has an image)"
    )


def test_no_estimate_no_context_filter() -> None:
    assert capable(["small"], PROVIDERS, tokens=None, image=False) == (["small"], [])


def test_vision_filter_looks_at_the_whole_history() -> None:
    assert has_image(sig(cb.main_loop(4, image_turns=(1,))))
    assert not has_image(sig(cb.main_loop(4)))


def test_image_question_asked_only_when_a_candidate_lacks_vision() -> None:
    asked: list[int] = []

    def image() -> bool:
        asked.append(1)
        return True

    assert capable(["small", "big"], PROVIDERS, tokens=1000, image=image) == (["small", "big"], [])
    assert asked == []
    kept, _ = capable(["small", "text", "big"], PROVIDERS, tokens=1000, image=image)
    assert kept == ["small", "big"] and asked == [1]


def test_a_full_walk_is_remembered() -> None:
    s = sig(cb.main_loop(3, image_turns=(1,)))
    assert s.has_media is None
    estimate(s)  # no history: walks every message
    assert s.has_media is True
    assert has_image(s)
    plain = sig(cb.main_loop(3))
    assert not has_image(plain) and plain.has_media is False

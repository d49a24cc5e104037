"""Prices of the model actually sent to a provider, the blended price least-cost ranks by, and
the cost of an attempt.

Prices come from the provider's `price` override, else from the genai-prices data (looked up
once per model and provider URL, then cached: the hot path only reads numbers). Tiered prices
follow genai-prices' cliff model: past a tier's start, every input token pays the tier rate.
Pure: no I/O, no mitmproxy imports.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from llmrouter.wire.apis import Usage

_DEFAULT_INPUT_SHARE = 0.75  # 3:1 input:output until this profile has traffic


class PriceOverride(Protocol):
    input: float
    output: float
    cache_read: float | None
    cache_write: float | None


@dataclass(frozen=True, slots=True)
class Rate:
    base: float  # USD per million tokens
    tiers: tuple[tuple[int, float], ...] = ()  # (start in total input tokens, rate), ascending

    def at(self, total_input: int) -> float:
        rate = self.base
        for start, tier_rate in self.tiers:
            if total_input >= start:
                rate = tier_rate
        return rate


@dataclass(frozen=True, slots=True)
class ModelPrice:
    input: Rate
    output: Rate
    cache_read: Rate
    cache_write: Rate
    source: str  # "config" | "genai-prices"


def _rate(value: Any) -> Rate | None:
    if value is None:
        return None
    base = getattr(value, "base", None)
    if base is None:
        return Rate(float(value))
    return Rate(float(base), tuple((t.start, float(t.price)) for t in value.tiers))


def from_override(p: PriceOverride) -> ModelPrice:
    inp = Rate(p.input)
    return ModelPrice(
        inp,
        Rate(p.output),
        Rate(p.cache_read) if p.cache_read is not None else inp,
        Rate(p.cache_write) if p.cache_write is not None else inp,
        "config",
    )


# genai-prices lookups, the least recently used dropped first: model names are the client's
# choice, so the cache must not grow with every new one.
MAX_LOOKUPS = 1024
_lookups: OrderedDict[tuple[str, str | None], ModelPrice | None] = OrderedDict()


def lookup(model: str, api_url: str | None = None) -> ModelPrice | None:
    """genai-prices' price for a model (at the provider URL when it knows it); None: unknown."""
    key = (model, api_url)
    if key in _lookups:
        _lookups.move_to_end(key)
        return _lookups[key]
    from genai_prices import data_snapshot  # loads its data set once, on first use

    snapshot = data_snapshot.get_snapshot()
    found = None
    for url in (api_url, None) if api_url else (None,):
        try:
            _, info = snapshot.find_provider_model(model, None, None, url)
        except LookupError:
            continue
        mp = info.get_prices(datetime.now(UTC))
        inp, out = _rate(getattr(mp, "input_mtok", None)), _rate(getattr(mp, "output_mtok", None))
        if inp is None or out is None:
            continue
        found = ModelPrice(
            inp,
            out,
            _rate(getattr(mp, "cache_read_mtok", None)) or inp,
            _rate(getattr(mp, "cache_write_mtok", None)) or inp,
            "genai-prices",
        )
        break
    _lookups[key] = found
    if len(_lookups) > MAX_LOOKUPS:
        _lookups.popitem(last=False)
    return found


def preload() -> None:
    """Load genai-prices' data set (tens of ms): call it off the event loop at start-up."""
    from genai_prices import data_snapshot

    data_snapshot.get_snapshot()


def price_of(
    model: str | None, override: PriceOverride | None, api_url: str | None
) -> ModelPrice | None:
    if override is not None:
        return from_override(override)
    return lookup(model, api_url) if model else None


@dataclass(slots=True)
class Mix:
    """A profile's token mix, learned from its traffic: what a blended price weighs."""

    input_tokens: float = 0.0
    output_tokens: float = 0.0
    cache_read_tokens: float = 0.0

    def add(self, usage: Usage) -> None:
        # Decay old traffic so the mix follows how the profile is used now.
        self.input_tokens = self.input_tokens * 0.99 + (usage.input_tokens or 0)
        self.output_tokens = self.output_tokens * 0.99 + (usage.output_tokens or 0)
        self.cache_read_tokens = self.cache_read_tokens * 0.99 + (usage.cache_read_tokens or 0)

    def shares(self) -> tuple[float, float]:
        """(input share of all tokens, cache-read share of input)."""
        total = self.input_tokens + self.output_tokens
        if total <= 0:
            return _DEFAULT_INPUT_SHARE, 0.0
        cached = self.cache_read_tokens / self.input_tokens if self.input_tokens else 0.0
        return self.input_tokens / total, min(cached, 1.0)


def blended(price: ModelPrice, input_share: float, cache_share: float) -> float:
    """USD per million tokens of this profile's typical mix, at base (untiered) rates."""
    inp = (1 - cache_share) * price.input.base + cache_share * price.cache_read.base
    return input_share * inp + (1 - input_share) * price.output.base


def cost(price: ModelPrice | None, usage: Usage) -> float | None:
    """USD cost of an attempt from its real token counts; None when unpriced or unreported."""
    if price is None or (usage.input_tokens is None and usage.output_tokens is None):
        return None
    total_in = usage.input_tokens or 0
    read = usage.cache_read_tokens or 0
    write = usage.cache_write_tokens or 0
    plain = max(total_in - read - write, 0)
    usd = (
        plain * price.input.at(total_in)
        + read * price.cache_read.at(total_in)
        + write * price.cache_write.at(total_in)
        + (usage.output_tokens or 0) * price.output.at(total_in)
    ) / 1_000_000
    return round(usd, 8)

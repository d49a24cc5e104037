"""Bounded-memory quantiles for the traffic report."""

from __future__ import annotations

import math


class LogHistogram:
    """Quantiles in bounded memory: log-spaced buckets with relative error <= `precision`.

    Bucket i holds values in (gamma**(i-1), gamma**i] and reports 2*gamma**i/(gamma+1), which
    is within `precision` of all of them (the DDSketch construction). The bucket count grows
    with log(max/min), never with the number of values.
    """

    __slots__ = ("_buckets", "_gamma", "_log_gamma", "_zeros", "count", "precision")
    ZERO_BELOW = 1e-3  # values under this count as 0: log() needs a floor

    def __init__(self, precision: float = 0.01) -> None:
        self.precision = precision
        self._gamma = (1 + precision) / (1 - precision)
        self._log_gamma = math.log(self._gamma)
        self._buckets: dict[int, int] = {}
        self._zeros = 0
        self.count = 0

    def add(self, value: float) -> None:
        self.count += 1
        if value < self.ZERO_BELOW:
            self._zeros += 1
            return
        i = math.ceil(math.log(value) / self._log_gamma)
        self._buckets[i] = self._buckets.get(i, 0) + 1

    def merge(self, other: LogHistogram) -> None:
        if other.precision != self.precision:
            raise ValueError("cannot merge histograms of different precision")
        self.count += other.count
        self._zeros += other._zeros
        for i, n in other._buckets.items():
            self._buckets[i] = self._buckets.get(i, 0) + n

    @property
    def bucket_count(self) -> int:
        return len(self._buckets) + (1 if self._zeros else 0)

    def quantile(self, q: float) -> float | None:
        """Nearest-rank quantile (the value of rank ceil(q*n)); None when empty."""
        if not self.count:
            return None
        rank = nearest_rank(q, self.count)
        seen = self._zeros
        if rank <= seen:
            return 0.0
        for i in sorted(self._buckets):
            seen += self._buckets[i]
            if seen >= rank:
                return 2 * self._gamma**i / (self._gamma + 1)
        raise AssertionError("unreachable: bucket counts add up to count")


def nearest_rank(q: float, n: int) -> int:
    """1-based rank of the q-quantile of n values (the epsilon absorbs float noise in q*n)."""
    return min(n, max(1, math.ceil(q * n - 1e-9)))

"""Provider health: cooldowns by failure class, half-open probes, Retry-After parsing.

State belongs to a provider (keyed by the glue, e.g. name + base_url), so every profile that
lists it sees the same health. Time is passed in (`now`, monotonic seconds), never read here.
Pure: no I/O, no mitmproxy imports.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import TypedDict

from llmrouter.wire.outcome import Failure


class State(StrEnum):
    HEALTHY = "healthy"
    COOLING = "cooling"
    PROBING = "probing"


@dataclass(frozen=True, slots=True)
class HealthSettings:
    rate_limit_cooldown: float = 30.0
    backoff_initial: float = 10.0
    backoff_max: float = 300.0
    auth_cooldown: float = 1800.0
    max_cooldown: float = 86400.0
    probe_lease: float = 600.0  # a probe whose owner vanished frees the slot after this


class AttemptEnd(TypedDict, total=False):
    """`HealthBook.record`'s keywords (defaults there), which the state backends pass through."""

    retry_after: float | None
    probe: bool
    judged: bool
    started: float | None


_WINDOW = 300.0  # router.status reports requests and failures over the last 5 minutes
_BUCKET = 10.0


@dataclass(slots=True)
class ProviderHealth:
    until: float = 0.0  # cooling until this time
    failures: int = 0  # consecutive server-class failures: drives the backoff
    needs_probe: bool = False  # recovered from a cooldown but not yet proven
    probe_until: float = 0.0  # a probe is in flight until this time
    last_error: str | None = None
    last_error_at: float | None = None
    # (bucket start, attempts, failures), newest last; bounded by _WINDOW / _BUCKET
    window: deque[list[float]] = field(default_factory=deque)

    def state(self, now: float) -> State:
        if now < self.until:
            return State.COOLING
        if self.needs_probe and now < self.probe_until:
            return State.PROBING
        return State.HEALTHY

    def available(self, now: float) -> bool:
        """Healthy, or recovered and free to be probed by this request."""
        return now >= self.until and not (self.needs_probe and now < self.probe_until)

    def count(self, now: float, failed: bool) -> None:
        start = now - now % _BUCKET
        if not self.window or self.window[-1][0] != start:
            self.window.append([start, 0, 0])
        bucket = self.window[-1]
        bucket[1] += 1
        bucket[2] += failed
        self._trim(now)

    def recent(self, now: float) -> tuple[int, int]:
        """(attempts, failures) over the last five minutes."""
        self._trim(now)
        return int(sum(b[1] for b in self.window)), int(sum(b[2] for b in self.window))

    def _trim(self, now: float) -> None:
        while self.window and self.window[0][0] <= now - _WINDOW:
            self.window.popleft()


class HealthBook:
    """Health of every provider, shared by all profiles."""

    def __init__(self, settings: HealthSettings | None = None) -> None:
        self.settings = settings or HealthSettings()
        self._providers: dict[str, ProviderHealth] = {}

    def get(self, key: str) -> ProviderHealth:
        h = self._providers.get(key)
        if h is None:
            h = self._providers[key] = ProviderHealth()
        return h

    def available(self, key: str, now: float) -> bool:
        h = self._providers.get(key)
        return h is None or h.available(now)

    def acquire(self, key: str, now: float, *, force: bool = False) -> bool | None:
        """Claim a provider right before an attempt.

        Returns True when this attempt is the half-open probe, False for a normal attempt, and
        None when the provider must be skipped (cooling, or another request is probing it).
        `force` claims it anyway: used when every candidate is cooling.
        """
        h = self.get(key)
        if not force and not h.available(now):
            return None
        if h.needs_probe:
            h.probe_until = now + self.settings.probe_lease
            return True
        return False

    def record(
        self,
        key: str,
        now: float,
        failure: Failure,
        *,
        retry_after: float | None = None,
        probe: bool = False,
        judged: bool = True,
        started: float | None = None,
    ) -> float | None:
        """Feed an attempt's end. Returns the cooldown (s) it caused, if any.

        `judged=False` (the client went away) frees a probe without a verdict. A success of an
        attempt `started` before the latest failure does not lift the cooldown that failure set.
        """
        h = self.get(key)
        if probe:
            h.probe_until = 0.0
        if not judged:
            return None
        h.count(now, failure is not Failure.NONE)
        # An attempt started before the latest failure tells nothing newer: its success does
        # not lift that cooldown, and its failure does not double the backoff again (a burst of
        # concurrent 503s is one failure, not eight).
        stale = started is not None and h.last_error_at is not None and started < h.last_error_at
        if failure is Failure.NONE:
            if stale:
                return None
            h.failures = 0
            h.until = 0.0
            h.needs_probe = False
            return None
        s = self.settings
        if failure is Failure.RATE_LIMIT:
            cool = retry_after if retry_after is not None else s.rate_limit_cooldown
        elif failure is Failure.AUTH:
            cool = s.auth_cooldown
        else:
            h.failures += 0 if stale and h.failures else 1
            cool = min(s.backoff_initial * 2 ** min(h.failures - 1, 32), s.backoff_max)
            if retry_after is not None:
                cool = max(cool, retry_after)
        cool = min(cool, s.max_cooldown)
        h.until = max(h.until, now + cool)  # when cooled again, the later deadline wins
        h.needs_probe = True
        h.last_error = failure.value
        h.last_error_at = now
        return cool

    def until(self, key: str) -> float:
        h = self._providers.get(key)
        return h.until if h else 0.0

    def earliest_recovery(self, keys: Iterable[str], now: float) -> float | None:
        """Seconds until the first of these providers leaves its cooldown (None: one is ready)."""
        waits = [max(0.0, self.until(k) - now) for k in keys]
        best = min(waits, default=None)
        return best if best else None

    def probe_passed(self, key: str) -> None:
        """A streamed probe committed: healthy now, not when its stream ends minutes later."""
        h = self._providers.get(key)
        if h is not None:
            h.failures, h.until, h.needs_probe, h.probe_until = 0, 0.0, False, 0.0

    def adopt(self, key: str, until: float, now: float, reason: str) -> bool:
        """Another router instance cooled this provider until `until` (this clock): the later
        deadline wins, and recovering takes a probe, as after a cooldown of our own."""
        h = self.get(key)
        if until <= now or until <= h.until:
            return False
        h.until, h.needs_probe = until, True
        h.last_error, h.last_error_at = reason, now
        return True

    def defer_probe(self, key: str, until: float) -> None:
        """Another instance holds the half-open probe: do not probe before `until`."""
        self.get(key).probe_until = until

    def forgive_auth(self, key: str) -> None:
        """The provider's key changed: an auth cooldown earned by the old key no longer holds."""
        h = self._providers.get(key)
        if h is not None and h.last_error == Failure.AUTH.value:
            h.until, h.needs_probe, h.last_error = 0.0, False, None

    def retain(self, keys: Iterable[str]) -> None:
        """Forget providers that left the config (a reload keeps the others' state)."""
        keep = set(keys)
        for k in list(self._providers):
            if k not in keep:
                del self._providers[k]


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _duration(value: str) -> float | None:
    """OpenAI's reset durations: `1s`, `6m0s`, `20ms`, `1h2m3.5s`."""
    value = value.strip()
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        try:
            return float(value)
        except ValueError:
            return None
    return sum(float(n) * _UNIT[u] for n, u in parts)


def _until(value: str, now_wall: float) -> float | None:
    """Seconds from now to an RFC 3339 or HTTP date."""
    value = value.strip()
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    if when.tzinfo is None:
        return None
    return when.timestamp() - now_wall


def parse_retry_after(headers: Mapping[str, str], now_wall: float) -> float | None:
    """Seconds a provider asked us to wait, from (in this order) retry-after-ms, retry-after
    (seconds or HTTP date), then Anthropic's anthropic-ratelimit-*-reset or OpenAI's
    x-ratelimit-reset-*. `headers` has lower-case keys; `now_wall` is the Unix time.
    """
    if (v := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(v) / 1000)
        except ValueError:
            pass
    if (v := headers.get("retry-after")) is not None:
        try:
            return max(0.0, float(v))
        except ValueError:
            if (s := _until(v, now_wall)) is not None:
                return max(0.0, s)
    resets: dict[str, float] = {}
    for name, value in headers.items():
        if name.startswith("anthropic-ratelimit-") and name.endswith("-reset"):
            family = name[len("anthropic-ratelimit-") : -len("-reset")]
            s = _until(value, now_wall)
            remaining = headers.get(f"anthropic-ratelimit-{family}-remaining")
        elif name.startswith("x-ratelimit-reset-"):
            family = name[len("x-ratelimit-reset-") :]
            s = _duration(value)
            remaining = headers.get(f"x-ratelimit-remaining-{family}")
        else:
            continue
        if s is not None:
            resets[family] = max(0.0, s)
            if remaining is not None and remaining.strip() == "0":
                resets[f"!{family}"] = max(0.0, s)
    if not resets:
        return None
    # The exhausted limit is the one that matters; when none says so, the soonest reset.
    exhausted = [v for k, v in resets.items() if k.startswith("!")]
    return max(exhausted) if exhausted else min(resets.values())

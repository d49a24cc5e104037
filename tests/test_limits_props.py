"""The ledger against a reference model, under random interleavings of reserve, settle,
release and the passing of time (hypothesis): it admits exactly what fits, never lets
reservations in flight together pass a budget, and keeps no ended window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)
from llmrouter.state import limits
from llmrouter.state.limits import RPM_SPAN, Grant, Ledger, windows_for

USERS = ("alice", "bob")
START = datetime(2026, 11, 30, 22, tzinfo=UTC).timestamp()  # a day and a month end soon


@dataclass
class L:
    usd_per_day: float | None = None
    usd_per_month: float | None = None
    rpm: int | None = None


limits_st = st.builds(
    L,
    usd_per_day=st.none() | st.sampled_from([0, 0.01, 0.5, 2]),
    usd_per_month=st.none() | st.sampled_from([0, 0.02, 1, 5]),
    rpm=st.none() | st.integers(0, 6),
)


class LedgerMachine(RuleBasedStateMachine):
    """`overshoot` lets a real cost exceed its reservation (an input estimate that was low)."""

    overshoot = False
    grants = Bundle("grants")

    @initialize(a=limits_st, b=limits_st)
    def setup(self, a: L, b: L) -> None:
        self.led = Ledger(busy_retry=5.0)
        self.now = START
        self.limits = {"alice": a, "bob": b}
        self.spent: dict[tuple[str, str], int] = {}  # (user, window key) -> micro-USD
        self.held: dict[tuple[str, str], int] = {}
        self.excess: dict[tuple[str, str], int] = {}  # real cost beyond the reservation
        self.times: dict[str, list[float]] = {u: [] for u in USERS}
        self.live: dict[str, Grant] = {}

    @rule(dt=st.sampled_from([0.0, 0.5, 1.0, 10.0, 59.0, 61.0, 3600.0, 86400.0, 40 * 86400.0]))
    def advance(self, dt: float) -> None:
        self.now += dt

    @rule(target=grants, user=st.sampled_from(USERS), amount=st.integers(0, 12_000))
    def reserve(self, user: str, amount: int) -> Grant | None:
        ws = windows_for(self.limits[user], self.now)
        fits = True
        for w in ws:
            if w.name == "rpm":
                recent = [t for t in self.times[user] if t > self.now - RPM_SPAN]
                fits &= len(recent) < w.limit
            else:
                k = (user, w.key)
                fits &= self.spent.get(k, 0) + self.held.get(k, 0) + amount <= w.limit
        r = self.led.reserve(user, ws, amount, self.now)
        assert isinstance(r, Grant) == fits, (r, ws)
        if not isinstance(r, Grant):
            assert r.retry_after >= 0 and user in r.message and r.window.name in r.message
            return None
        for w in ws:
            if w.name == "rpm":
                self.times[user].append(self.now)
            else:
                self.held[user, w.key] = self.held.get((user, w.key), 0) + amount
        self.live[r.id] = r
        return r

    def _unhold(self, g: Grant) -> bool:
        if self.live.pop(g.id, None) is None:
            return False
        for w in g.windows:
            if w.name != "rpm":
                self.held[g.user, w.key] -= g.amount
        return True

    @rule(g=consumes(grants), share=st.floats(0, 1), extra=st.integers(0, 20_000))
    def settle(self, g: Grant | None, share: float, extra: int) -> None:
        if g is None:
            return
        actual = int(g.amount * share) + (extra if self.overshoot else 0)
        self.led.settle(g, actual, self.now)
        if not self._unhold(g):
            return
        for key, reset_at in (limits._day(g.at), limits._month(g.at)):
            if reset_at > self.now:
                self.spent[g.user, key] = self.spent.get((g.user, key), 0) + actual
                over = max(actual - g.amount, 0)
                self.excess[g.user, key] = self.excess.get((g.user, key), 0) + over

    @rule(g=consumes(grants))
    def release(self, g: Grant | None) -> None:
        if g is not None:
            self.led.release(g, self.now)
            self._unhold(g)

    @rule(g=grants)
    def finish_twice(self, g: Grant | None) -> None:
        """A grant already finished, finished again: nothing changes."""
        if g is not None and g.id not in self.live:
            self.led.settle(g, 10**9, self.now)
            self.led.release(g, self.now)

    @invariant()
    def matches_the_model_and_never_overspends(self) -> None:
        if not hasattr(self, "led"):
            return
        for user in USERS:
            for w in windows_for(self.limits[user], self.now):
                if w.name == "rpm":
                    continue
                k = (user, w.key)
                spent, held = self.led.spent(user, w), self.led.reserved(user, w)
                assert (spent, held) == (self.spent.get(k, 0), self.held.get(k, 0))
                # Holds in flight plus settled spend stay within the budget, up to what real
                # costs exceeded their reservations (nothing, unless estimates were low).
                assert spent + held <= w.limit + self.excess.get(k, 0)
        assert self.led.in_flight == len(self.live)

    @invariant()
    def memory_is_bounded(self) -> None:
        if not hasattr(self, "led"):
            return
        self.led.prune(self.now)
        for user, buckets in self.led._buckets.items():
            live_keys = {w.key for g in self.live.values() if g.user == user for w in g.windows}
            current = {limits._day(self.now)[0], limits._month(self.now)[0]}
            assert set(buckets) <= current | live_keys
        for user, recent in self.led._recent.items():
            assert all(t > self.now - RPM_SPAN for t in recent)
            rpm = self.limits[user].rpm
            assert rpm is not None and len(recent) <= rpm


class OvershootMachine(LedgerMachine):
    overshoot = True


TestLedger = LedgerMachine.TestCase
TestLedger.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
TestLedgerOvershoot = OvershootMachine.TestCase
TestLedgerOvershoot.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)

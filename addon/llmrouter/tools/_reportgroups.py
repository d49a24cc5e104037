"""Report views by route, by user, and of the prompt cache (per provider, profile, conversation).

Each view is fed one validated attempt line at a time and keeps bounded state: routes and users
are bounded by the config (and capped anyway), conversations are capped with the smallest ones
evicted. Pure: plain data in, plain data out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from llmrouter.tools._histogram import LogHistogram

# (provider, model, total input tokens) -> USD per million (input, cache read, cache write),
# or None when the price is unknown. The report asks genai-prices / the config's overrides.
CacheRates = Callable[[str, str, int], tuple[float, float, float] | None]

MAX_KEYS = 10_000  # routes or users beyond this are folded into OTHER
MAX_CONVERSATIONS = 20_000  # then the smaller half (by input tokens) is forgotten
OTHER = "(other)"


@dataclass(slots=True)
class Line:
    """The fields of one attempt line that the views use (already validated)."""

    profile: str
    provider: str
    model: str
    attempt: int
    final: bool
    ok: bool
    total_ms: float | None
    input_tokens: int | None
    output_tokens: int | None
    cache_read: int | None
    cache_write: int | None
    cost: float | None
    route: str | None = None
    user: str | None = None
    conversation: str | None = None
    affinity: str | None = None
    charged: float | None = None  # charged_usd: what the user's budget counted, when not cost


class Group:
    """Traffic, latency, tokens and cost of one route or one user."""

    __slots__ = ("attempts", "cost", "failed", "failovers", "input", "output", "priced",
                 "requests", "served", "total", "unpriced")  # fmt: skip

    def __init__(self) -> None:
        self.requests = self.attempts = self.served = self.failed = self.failovers = 0
        self.input = self.output = self.priced = self.unpriced = 0
        self.cost = 0.0
        self.total = LogHistogram(0.01)

    def add(self, ln: Line) -> None:
        self.attempts += 1
        self.requests += ln.attempt == 1
        self.failovers += ln.attempt > 1  # each one a move to the next candidate
        if ln.final:
            self.served += ln.ok
            self.failed += not ln.ok
        if ln.ok and ln.total_ms is not None:
            self.total.add(ln.total_ms)
        self.input += ln.input_tokens or 0
        self.output += ln.output_tokens or 0
        if ln.cost is not None:
            self.cost += ln.cost
            self.priced += 1
        elif ln.ok or ln.input_tokens or ln.output_tokens:
            self.unpriced += 1

    @property
    def size(self) -> int:
        return 1 + self.total.bucket_count


class Cache:
    """Prompt-cache use of some traffic, and what its tokens would have cost with no cache."""

    __slots__ = ("compared", "input", "nocache", "paid", "read", "uncompared", "write")

    def __init__(self) -> None:
        self.input = self.read = self.write = self.compared = self.uncompared = 0
        self.paid = self.nocache = 0.0

    def add(self, ln: Line, rates: tuple[float, float, float] | None) -> None:
        if ln.input_tokens is None:
            return
        read, write = ln.cache_read or 0, ln.cache_write or 0
        self.input += ln.input_tokens
        self.read += read
        self.write += write
        if ln.cost is None or rates is None:
            self.uncompared += 1  # unpriced, or no cache price: the sums are partial
            return
        # With no cache, read and written tokens would all have paid the plain input rate.
        rin, rread, rwrite = rates
        self.paid += ln.cost
        self.nocache += ln.cost + (read * (rin - rread) + write * (rin - rwrite)) / 1e6
        self.compared += 1

    @property
    def share(self) -> float | None:
        """Share of input tokens read from the cache."""
        return self.read / self.input if self.input else None


@dataclass(slots=True)
class Conversation:
    requests: int = 0
    served: int = 0
    moves: int = 0  # served by another provider than the previous answer: prefix rewritten
    last: str | None = None
    providers: list[str] = field(default_factory=list)  # first few, in order of use
    cache: Cache = field(default_factory=Cache)


@dataclass(frozen=True, slots=True)
class ConversationRow:
    key: str
    requests: int
    moves: int
    providers: list[str]
    input: int
    share: float | None
    paid: float | None
    nocache: float | None


@dataclass(frozen=True, slots=True)
class Views:
    """What the route, user and cache views show; empty dicts when the field never appeared."""

    routes: dict[str, Group]
    users: dict[str, Group]
    cache_by_provider: dict[str, Cache]
    cache_by_profile: dict[str, Cache]
    conversations: int  # distinct conversations seen
    conversations_exact: bool  # False once some were evicted (then a recurring one counts twice)
    moved: int  # conversations served by more than one provider
    moves: int
    affinity: dict[str, int]  # new | bound | rebound | expired -> attempts
    top_conversations: list[ConversationRow]


def _capped(table: dict[str, Group], key: str) -> Group:
    g = table.get(key)
    if g is None:
        if len(table) >= MAX_KEYS:
            key = OTHER
        g = table.get(key) or table.setdefault(key, Group())
    return g


class GroupViews:
    def __init__(self, rates: CacheRates | None = None) -> None:
        self._rates = rates
        self._routes: dict[str, Group] = {}
        self._users: dict[str, Group] = {}
        self._by_provider: dict[str, Cache] = {}
        self._by_profile: dict[str, Cache] = {}
        self._conv: dict[str, Conversation] = {}
        self._conv_seen = 0
        self._evicted = False
        self._affinity: dict[str, int] = {}
        self._cache_seen = False
        self._price_memo: dict[tuple[str, str, int], tuple[float, float, float] | None] = {}

    def add(self, ln: Line) -> None:
        if ln.route is not None:
            _capped(self._routes, f"{ln.profile}/{ln.route}").add(ln)
        if ln.user is not None:  # a user's cost is what their budgets counted (charged_usd)
            _capped(self._users, ln.user).add(ln if ln.charged is None else replace(
                ln, cost=ln.charged))  # fmt: skip
        if ln.affinity is not None:
            self._affinity[ln.affinity] = self._affinity.get(ln.affinity, 0) + 1
        self._cache_seen = self._cache_seen or ln.cache_read is not None
        self._cache_seen = self._cache_seen or ln.cache_write is not None
        if ln.input_tokens is None and ln.conversation is None:
            return
        rates = self._rates_of(ln)
        for table, key in ((self._by_provider, ln.provider), (self._by_profile, ln.profile)):
            (table.get(key) or table.setdefault(key, Cache())).add(ln, rates)
        if ln.conversation is not None:
            self._add_conversation(ln, rates)

    def _rates_of(self, ln: Line) -> tuple[float, float, float] | None:
        if ln.cost is None:
            return None
        if not (ln.cache_read or ln.cache_write):
            return (0.0, 0.0, 0.0)  # nothing cached: the same cost either way
        if self._rates is None:
            return None
        # Tiers start at multiples of 1k tokens: keyed by 1k, the memo stays small.
        key = (ln.provider, ln.model, (ln.input_tokens or 0) // 1000)
        if key not in self._price_memo:
            if len(self._price_memo) > 50_000:
                self._price_memo.clear()
            self._price_memo[key] = self._rates(ln.provider, ln.model, ln.input_tokens or 0)
        return self._price_memo[key]

    def _add_conversation(self, ln: Line, rates: tuple[float, float, float] | None) -> None:
        assert ln.conversation is not None
        c = self._conv.get(ln.conversation)
        if c is None:
            if len(self._conv) >= MAX_CONVERSATIONS:
                self._evict()
            c = self._conv[ln.conversation] = Conversation()
            self._conv_seen += 1
        c.requests += ln.attempt == 1
        c.cache.add(ln, rates)
        if ln.final and ln.ok:
            c.served += 1
            if c.last is not None and c.last != ln.provider:
                c.moves += 1
            c.last = ln.provider
            if ln.provider not in c.providers and len(c.providers) < 8:
                c.providers.append(ln.provider)

    def _evict(self) -> None:
        keep = sorted(self._conv.items(), key=lambda kv: -kv[1].cache.input)
        self._conv = dict(keep[: MAX_CONVERSATIONS // 2])
        self._evicted = True

    @property
    def size(self) -> int:
        groups = (*self._routes.values(), *self._users.values())
        return (sum(g.size for g in groups) + len(self._by_provider) + len(self._by_profile)
                + len(self._conv) + len(self._affinity) + len(self._price_memo))  # fmt: skip

    def result(self, top: int = 15) -> Views:
        convs = self._conv.values()
        ranked = sorted(self._conv.items(), key=lambda kv: (-kv[1].cache.input, kv[0]))[:top]
        rows = [
            ConversationRow(k, c.requests, c.moves, list(c.providers), c.cache.input,
                            c.cache.share, c.cache.paid if c.cache.compared else None,
                            c.cache.nocache if c.cache.compared else None)
            for k, c in ranked
        ]  # fmt: skip
        show_cache = self._cache_seen or bool(self._conv)
        return Views(
            routes=dict(sorted(self._routes.items())),
            users=dict(sorted(self._users.items())),
            cache_by_provider=dict(sorted(self._by_provider.items())) if show_cache else {},
            cache_by_profile=dict(sorted(self._by_profile.items())) if show_cache else {},
            conversations=self._conv_seen,
            conversations_exact=not self._evicted,
            moved=sum(1 for c in convs if c.moves),
            moves=sum(c.moves for c in convs),
            affinity=dict(sorted(self._affinity.items(), key=lambda kv: (-kv[1], kv[0]))),
            top_conversations=rows,
        )

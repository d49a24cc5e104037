"""The route, user and prompt-cache tables: shown only when their fields appear in the log."""

from __future__ import annotations

from llmrouter.tools._reportgroups import Cache, ConversationRow, Group, Views
from llmrouter.tools._reporttable import Table, clip, count, ms, share, usd

_GROUP_SUMS = ("requests", "attempts", "served", "failed", "failovers", "input", "output",
               "priced", "unpriced", "cost")  # fmt: skip
_CACHE_SUMS = ("input", "read", "write", "compared", "uncompared", "paid", "nocache")
_ROUTE_NOTE = "failovers: moves to the next candidate. p50, p95: total ms of ok attempts."
_CACHE_HEAD = ["input", "cache read", "cache write", "cached", "paid", "no cache", "saved"]


def _sum_groups(groups: list[Group]) -> Group:
    t = Group()
    for g in groups:
        for name in _GROUP_SUMS:
            setattr(t, name, getattr(t, name) + getattr(g, name))
        t.total.merge(g.total)
    return t


def _sum_caches(caches: list[Cache]) -> Cache:
    t = Cache()
    for c in caches:
        for name in _CACHE_SUMS:
            setattr(t, name, getattr(t, name) + getattr(c, name))
    return t


def _group_cost(g: Group) -> str:
    return usd(g.cost if g.priced else None, g.priced > 0 and g.unpriced > 0)


def _total(rows: dict[str, object], row: list[str]) -> list[str]:
    return row if len(rows) > 1 else []  # one row needs no total


def view_tables(v: Views, compact: bool = True) -> list[Table]:
    def n(x: int) -> str:
        return count(x, compact)

    def route(name: str, g: Group) -> list[str]:
        p50, p95 = g.total.quantile(0.5), g.total.quantile(0.95)
        return [clip(name, 20, compact), n(g.requests), n(g.served), n(g.failed),
                n(g.failovers), ms(p50), ms(p95), n(g.input), n(g.output),
                _group_cost(g)]  # fmt: skip

    def user(name: str, g: Group) -> list[str]:
        return [clip(name, 24, compact), n(g.requests), n(g.served), n(g.failed), n(g.input),
                n(g.output), _group_cost(g)]  # fmt: skip

    def cache(name: str, c: Cache) -> list[str]:
        paid, nocache = (c.paid, c.nocache) if c.compared else (None, None)
        saved = None if paid is None or nocache is None else nocache - paid
        partial = c.uncompared > 0
        return [clip(name, 18, compact), n(c.input), n(c.read), n(c.write), share(c.share),
                usd(paid, partial), usd(nocache, partial), usd(saved, partial)]  # fmt: skip

    def conversation(r: ConversationRow) -> list[str]:
        chain = clip(" > ".join(r.providers), 24, compact)
        return [r.key[:12], n(r.requests), n(r.moves), chain, n(r.input), share(r.share),
                usd(r.paid), usd(r.nocache)]  # fmt: skip

    out: list[Table] = []
    if v.routes:
        out.append(Table(
            "Routes (profile/route)",
            ["route", "requests", "served", "failed", "failovers", "p50 ms", "p95 ms",
             "input", "output", "cost USD"], "lrrrrrrrrr",
            [route(k, g) for k, g in v.routes.items()],
            _total(v.routes, route("TOTAL", _sum_groups(list(v.routes.values())))),
            [_ROUTE_NOTE]))  # fmt: skip
    if v.users:
        out.append(Table(
            "Users", ["user", "requests", "served", "failed", "input", "output", "cost USD"],
            "lrrrrrr", [user(k, g) for k, g in v.users.items()],
            _total(v.users, user("TOTAL", _sum_groups(list(v.users.values())))), []))  # fmt: skip
    notes = [
        "cached: share of input tokens read from the cache. no cache: the same tokens at the "
        "plain input price."
    ]
    if any(c.uncompared for c in v.cache_by_provider.values()):
        notes.append("*: partial, some lines had no price for their cached tokens.")
    for what, table in (("provider", v.cache_by_provider), ("profile", v.cache_by_profile)):
        if table:
            total = _total(table, cache("TOTAL", _sum_caches(list(table.values()))))
            rows = [cache(k, c) for k, c in table.items()]
            out.append(Table(f"Prompt cache by {what}", [what, *_CACHE_HEAD], "lrrrrrrr", rows,
                             total, notes))  # fmt: skip
            notes = []
    if v.conversations:
        plus = "" if v.conversations_exact else "+"
        notes = [f"{v.conversations:,}{plus} conversations; {v.moved:,} moved provider "
                 f"({v.moves:,} moves, each rewrote the cached prefix elsewhere)."]  # fmt: skip
        if v.affinity:
            notes.append("affinity: " + ", ".join(f"{k} {c:,}" for k, c in v.affinity.items()))
        out.append(Table(
            "Conversations (largest by input tokens)",
            ["conversation", "requests", "moves", "providers", "input", "cached", "paid",
             "no cache"], "lrrlrrrr",
            [conversation(r) for r in v.top_conversations], [], notes))  # fmt: skip
    return out

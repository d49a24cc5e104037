"""Lua scripts and key names of the shared store. Each script is one atomic step in Redis.

Key layout (P = `shared.prefix`, default `llmrouter:`); every key has a TTL:

- `P cool:<provider>` hash: d deadline and at set time (server ms), r failure class, by
  instance. Expires at the deadline.
- `P probe:<provider>` string: the instance id holding the half-open probe (expires with the
  probe lease, 600 s), or `ok` once a probe or a success proved the provider (10 s).
- `P bind:<conversation>` string: the provider the conversation is bound to. The binding's TTL.
- `P lat:<instance>` string: JSON, that instance's latency windows. 60 s after its last push.
- `P inst` zset: instance id -> last heartbeat (server ms). 60 s after the last beat.
- `P seq:<instance>` string: the last spend sequence number applied. 1 day.
- `P lim:<user>:<window>` hash, for a day or month window: s micro-USD spent, h micro-USD
  held by live leases, n leases. The window's reset + 5 min.
- `P lim:<user>:rpm` zset: grant id -> when it was admitted (server ms): the sliding minute.
  61 s after the last admission.
- `P lease:<user>` hash: grant id -> {a amount, w [windows]}, budget held by requests in
  flight; `P leasex:<user>` zset: grant id -> lease expiry (server ms). A live instance renews
  its leases; an expired one is dropped (its hold given back) by the next reservation. Both
  keys expire with the last of their windows' counters.
- `P ev`: the pub/sub channel of cool and ok events (not a key).

<provider> is the router's provider key (name and base URL), <conversation> the hashed
conversation key, <user> the access user with `%` and `:` escaped. Deadlines and leases use the
Redis server's clock (TIME), so instance clocks need not agree; instances convert to their
monotonic clock with an offset measured at each heartbeat.
"""

from __future__ import annotations

import hashlib

_NOW = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function int(n) return string.format('%d', n) end
"""

# KEYS: cool hash, probe key. ARGV: cooldown ms from now, reason, instance, channel, provider.
# The later deadline wins; a new cooldown ends the probe cycle (recovering needs a new probe).
COOL = (
    _NOW
    + """
local now = now_ms()
local d = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('HGET', KEYS[1], 'd') or '0')
if d <= cur then return {0, int(cur), int(now)} end
redis.call('HSET', KEYS[1], 'd', int(d), 'at', int(now), 'r', ARGV[2], 'by', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], int(d))
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[4],
  cjson.encode({t = 'cool', p = ARGV[5], d = int(d), r = ARGV[2], by = ARGV[3]}))
return {1, int(d), int(now)}
"""
)

# KEYS: probe key, cool hash. ARGV: instance, probe lease ms, grace ms.
# -> {'mine'|'ok'|'taken'|'cooling', ms}: ms is the claim's remaining time, or the cooldown's
# deadline. A cooldown within `grace` of its end counts as over: instance clocks convert
# deadlines to within a few ms, and a request must not be refused for that.
CLAIM = (
    _NOW
    + """
local d = redis.call('HGET', KEYS[2], 'd')
if d and tonumber(d) - now_ms() > tonumber(ARGV[3]) then return {'cooling', d} end
local cur = redis.call('GET', KEYS[1])
if (not cur) or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {'mine', ARGV[2]}
end
local state = 'taken'
if cur == 'ok' then state = 'ok' end
return {state, tostring(redis.call('PTTL', KEYS[1]))}
"""
)

# KEYS: cool hash, probe key. ARGV: attempt start (server ms), ok ttl ms, channel, provider,
# instance. A success proves the provider healthy, unless a cooldown was set after the attempt
# started: that one stands.
OK = """
local at = tonumber(redis.call('HGET', KEYS[1], 'at') or '-1')
if at >= tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], 'ok', 'PX', ARGV[2])
redis.call('PUBLISH', ARGV[3], cjson.encode({t = 'ok', p = ARGV[4], by = ARGV[5]}))
return 1
"""

# KEYS: probe key. ARGV: instance. A probe that ended without a verdict frees the slot.
UNCLAIM = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Budget leases. Per user: `lease` hash (grant id -> {a amount, w [window keys]}) and `leasex`
# zset (grant id -> expiry, server ms); per budget window: `lim` hash with s (spent), h (held
# by live leases) and n (leases). A lease leaves exactly once: settled, released or expired,
# each in a script that first checks it is still there, so h and n never drift.
_LEASES = """
local function drop(lease, leasex, stem, gid)
  local v = redis.call('HGET', lease, gid)
  if not v then return end
  local l = cjson.decode(v)
  for _, w in ipairs(l.w) do
    local k = stem .. w
    if redis.call('EXISTS', k) == 1 then
      redis.call('HINCRBY', k, 'h', -l.a)
      redis.call('HINCRBY', k, 'n', -1)
    end
  end
  redis.call('HDEL', lease, gid)
  redis.call('ZREM', leasex, gid)
end
local function keep(key, at)
  if redis.call('PEXPIRETIME', key) < at then redis.call('PEXPIREAT', key, at) end
end
"""

# KEYS: lease hash, lease zset, then a key per window: a `lim` hash for a budget, a zset of
# request times for rpm. ARGV: grant id, amount, lease ms, window key stem (P lim:<user>:),
# then per window: limit, kind (usd|rpm), expire-at (Unix ms), window key.
# The rule of limits.Ledger, in one step: a budget admits a request when spent + held + its
# amount fits; rpm admits while fewer than `limit` requests were admitted in the last 60 s,
# and counts the request now. All windows pass, or nothing is reserved.
# -> {1 | 0, then per window 3 numbers: budget: spent, held, leases; rpm: admitted in the
#    last 60 s, ms until one more may go (-1: not full), 0}
RESERVE = (
    _NOW
    + _LEASES
    + """
local SPAN = 60000
local now = now_ms()
local stem = ARGV[4]
for _, gid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 100)) do
  drop(KEYS[1], KEYS[2], stem, gid)
end
local n = #KEYS - 2
local amount = tonumber(ARGV[2])
local out, ok = {}, 1
for i = 1, n do
  local a = 4 * i + 1
  local key, limit = KEYS[i + 2], tonumber(ARGV[a])
  if ARGV[a + 1] == 'rpm' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - SPAN)
    local count, frees = redis.call('ZCARD', key), -1
    if count >= limit then
      ok = 0
      if limit > 0 then
        local r = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
        frees = tonumber(r[2]) + SPAN - now
      end
    end
    table.insert(out, int(count))
    table.insert(out, int(frees))
    table.insert(out, 0)
  else
    local v = redis.call('HMGET', key, 's', 'h', 'n')
    local s, h, c = tonumber(v[1] or '0'), tonumber(v[2] or '0'), tonumber(v[3] or '0')
    if s + h + amount > limit then ok = 0 end
    table.insert(out, int(s))
    table.insert(out, int(h))
    table.insert(out, int(c))
  end
end
table.insert(out, 1, ok)
if ok == 0 then return out end
local windows, last = {}, 0
for i = 1, n do
  local a = 4 * i + 1
  local key = KEYS[i + 2]
  if ARGV[a + 1] == 'rpm' then
    redis.call('ZADD', key, now, ARGV[1])
    redis.call('PEXPIRE', key, SPAN + 1000)
  else
    redis.call('HINCRBY', key, 'h', amount)
    redis.call('HINCRBY', key, 'n', 1)
    redis.call('PEXPIREAT', key, ARGV[a + 2])
    table.insert(windows, ARGV[a + 3])
    last = math.max(last, tonumber(ARGV[a + 2]))
  end
end
if #windows > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], cjson.encode({a = amount, w = windows}))
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
  -- the leases must outlive their windows' counters: an expired lease is given back from h
  -- by the next reservation, which needs to find it
  keep(KEYS[1], last)
  keep(KEYS[2], last)
end
return out
"""
)

# KEYS: lease hash, lease zset. ARGV: lease ms, grant ids... The owner is alive: its holds last
# longer (only those still there: an expired lease is not brought back).
RENEW = (
    _NOW
    + """
local e = now_ms() + tonumber(ARGV[1])
local kept = 0
for i = 2, #ARGV do
  kept = kept + redis.call('ZADD', KEYS[2], 'XX', 'CH', e, ARGV[i])
end
return kept
"""
)

# KEYS: seq key, lease hash, lease zset, `lim` hashes to book in... ARGV: seq, seq ttl ms,
# grant id ('' for spend made while Redis was away), amount, window key stem, then an
# expire-at (Unix ms) per window. Settlement and release: the hold goes, the real cost is
# booked (in the day and month the request was reserved, as limits.Ledger books it). The
# sequence number makes a batch sent twice (after a timeout that hid Redis applying it) count
# once.
APPLY = (
    _LEASES
    + """
local seq = tonumber(ARGV[1])
if seq <= tonumber(redis.call('GET', KEYS[1]) or '0') then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if ARGV[3] ~= '' then drop(KEYS[2], KEYS[3], ARGV[5], ARGV[3]) end
local amount = tonumber(ARGV[4])
if amount > 0 then
  for i = 4, #KEYS do
    redis.call('HINCRBY', KEYS[i], 's', amount)
    redis.call('PEXPIREAT', KEYS[i], ARGV[2 + i])
  end
end
return 1
"""
)

# KEYS: instance set. ARGV: instance, stale ms, ttl ms. -> {server now ms, live instances}.
HEARTBEAT = (
    _NOW
    + """
local now = now_ms()
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {int(now), redis.call('ZRANGE', KEYS[1], 0, -1)}
"""
)

SCRIPTS: dict[str, str] = {
    "cool": COOL,
    "claim": CLAIM,
    "ok": OK,
    "unclaim": UNCLAIM,
    "reserve": RESERVE,
    "renew": RENEW,
    "apply": APPLY,
    "heartbeat": HEARTBEAT,
}
SHAS: dict[str, str] = {n: hashlib.sha1(s.encode()).hexdigest() for n, s in SCRIPTS.items()}


def _esc(part: str) -> str:
    return part.replace("%", "%25").replace(":", "%3A")


class Keys:
    """Key names under one prefix (see the table above)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.instances = f"{prefix}inst"
        self.channel = f"{prefix}ev"

    def cool(self, provider: str) -> str:
        return f"{self.prefix}cool:{provider}"

    def probe(self, provider: str) -> str:
        return f"{self.prefix}probe:{provider}"

    def bind(self, conversation: str) -> str:
        return f"{self.prefix}bind:{conversation}"

    def latency(self, instance: str) -> str:
        return f"{self.prefix}lat:{instance}"

    def seq(self, instance: str) -> str:
        return f"{self.prefix}seq:{instance}"

    def limit(self, user: str, window_key: str) -> str:
        return f"{self.prefix}lim:{_esc(user)}:{window_key}"

    def limit_stem(self, user: str) -> str:
        """`limit(user, w)` is this + w: scripts build the keys of a lease's windows."""
        return f"{self.prefix}lim:{_esc(user)}:"

    def lease(self, user: str) -> str:
        return f"{self.prefix}lease:{_esc(user)}"

    def lease_expiry(self, user: str) -> str:
        return f"{self.prefix}leasex:{_esc(user)}"

"""Which tool call an OpenAI-format tool-call delta belongs to, and when a call is complete.

Providers disagree on what identifies a call in a stream:
- OpenAI, vLLM, DeepSeek: `index`, with `id` and `name` on the first delta only;
- Gemini's OpenAI-compatible API: no `index` at all, or `index` 0 for every call, each call
  with its own `id`, often whole in one delta;
- some proxies: `id: ""` on continuation deltas.
So an unseen non-empty id starts a call; a known id or index continues one; a delta with
neither continues the latest call.

Anthropic allows one open content block at a time, but some providers interleave the argument
deltas of parallel calls. A call therefore keeps its block until its arguments form a complete
JSON value; deltas of later calls wait meanwhile and are flushed when their turn comes. For the
usual sequential stream nothing waits: each call is complete when the next one starts.
"""

from __future__ import annotations

import json
import re
from typing import Any

from llmrouter.wire.translate.common import anthropic_tool_id

_SPECIAL = re.compile(r'[\\"{}\[\]]')


class Call:
    """One tool call of the answer: its block's state and a JSON completeness scanner.

    Scanning is lazy: it is needed only when another call is waiting for the block, so the
    common sequential stream scans each call's arguments at most once, when the next starts.
    """

    __slots__ = (
        "_depth",
        "_esc",
        "_in_str",
        "_started",
        "_unscanned",
        "complete",
        "id",
        "name",
        "pending",
        "state",
    )

    def __init__(self, call_id: str) -> None:
        self.id = call_id
        self.name = ""
        self.state = "waiting"  # -> "open" -> "closed"
        self.pending: list[str] = []  # arguments that arrived while another block was open
        self.complete = False
        self._unscanned: list[str | bytes] = []  # text, or a JSON string literal
        self._depth = 0
        self._in_str = False
        self._esc = False
        self._started = False

    def add(self, fragment: str | bytes) -> None:
        self._unscanned.append(fragment)

    def is_complete(self) -> bool:
        if self._unscanned:
            for part in self._unscanned:
                self._scan(part if isinstance(part, str) else json.loads(part))
            self._unscanned = []
        return self.complete

    def _scan(self, fragment: str) -> None:
        """Track nesting over the argument text so far; C-speed regex, Python per bracket."""
        skip = 0 if self._esc else -1
        self._esc = False
        for m in _SPECIAL.finditer(fragment):
            pos = m.start()
            if pos == skip:
                continue
            ch = m.group()
            if self._in_str:
                if ch == "\\":
                    skip = pos + 1
                    self._esc = skip == len(fragment)
                elif ch == '"':
                    self._in_str = False
            elif ch == '"':
                self._in_str = True
            elif ch in "{[":
                self._depth += 1
                self._started = True
            elif ch in "}]":
                self._depth -= 1
                if self._started and self._depth == 0:
                    self.complete = True


class CallBook:
    """The calls of one answer, in the order they started."""

    __slots__ = ("_by_id", "_by_index", "_seed", "calls")

    def __init__(self, seed: str) -> None:
        self._seed = seed
        self.calls: list[Call] = []
        self._by_id: dict[str, Call] = {}
        self._by_index: dict[int, Call] = {}

    def open_call_at(self, index: int) -> Call | None:
        """The call of a plain `index` delta, if its block is the open one."""
        call = self._by_index.get(index)
        return call if call is not None and call.state == "open" else None

    def resolve(self, delta: dict[str, Any], fn: dict[str, Any]) -> Call:
        raw_id = delta.get("id")
        index = delta.get("index")
        index = index if isinstance(index, int) and not isinstance(index, bool) else None
        if isinstance(raw_id, str) and raw_id:
            call = self._by_id.get(raw_id)
            if call is None:
                call = self._new(raw_id, index)
                self._by_id[raw_id] = call
            return call
        if index is not None and index in self._by_index:
            return self._by_index[index]
        if index is None and self.calls and not (fn.get("name") and self.calls[-1].name):
            return self.calls[-1]
        return self._new(None, index)

    def _new(self, raw_id: str | None, index: int | None) -> Call:
        call = Call(anthropic_tool_id(raw_id, f"toolu_{self._seed}_{len(self.calls)}"))
        self.calls.append(call)
        if index is not None:
            self._by_index[index] = call  # a repeated index (Gemini's 0) moves to the new call
        return call

    def next_waiting(self) -> Call | None:
        for call in self.calls:
            if call.state == "waiting":
                return call
        return None

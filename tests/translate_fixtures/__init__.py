"""Provider streams for the translation tests (see base.py)."""

from __future__ import annotations

from translate_fixtures.base import Fixture, Tool
from translate_fixtures.chat_cases import CHAT_FIXTURES
from translate_fixtures.messages import MESSAGES_FIXTURES

ALL: list[Fixture] = [*CHAT_FIXTURES, *MESSAGES_FIXTURES]

__all__ = ["ALL", "CHAT_FIXTURES", "MESSAGES_FIXTURES", "Fixture", "Tool"]

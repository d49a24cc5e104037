"""What the router shows is safe to show: keys redacted, control and bidi characters escaped,
client-chosen names capped."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from llmrouter.wire.scrub import MODEL_CHARS, Scrubber, cap, model_name, printable


def test_plain_text_is_returned_as_is() -> None:
    for text in ("claude-sonnet-4-5", "modèle 中文 ok", ""):
        assert printable(text) is text


def test_control_bidi_and_surrogates_are_escaped() -> None:
    assert printable("a\r\nrouter: forged") == "a\\r\\nrouter: forged"
    assert printable("x\u202etxt.exe\u2066") == "x\\u202etxt.exe\\u2066"
    assert printable("claude-\ud800") == "claude-\\ud800"
    assert printable("\x1b[31mred\x00") == "\\x1b[31mred\\x00"


@given(st.text())
def test_printable_is_one_line_of_printable_text_that_encodes(text: str) -> None:
    out = printable(text)
    assert out.isprintable()
    assert "\n" not in out and "\r" not in out
    out.encode("utf-8")  # never a lone surrogate


def test_cap_keeps_short_names_and_cuts_long_ones_apart() -> None:
    assert cap("claude-x") == "claude-x" and model_name(None) is None
    a, b = "m" * 1000 + "a", "m" * 1000 + "b"
    assert len(cap(a)) < MODEL_CHARS + 20 and cap(a) != cap(b)
    assert cap(a).startswith("m" * MODEL_CHARS) and cap(a) == cap(a)
    assert cap("\ud800" * 300)  # hashing a lone surrogate does not raise


def test_scrubber_redacts_every_form_of_every_key() -> None:
    s = Scrubber(["sk-one-0123456789", "key/with+odd=chars", "abc"])
    text = (
        'x-api-key: sk-one-0123456789, Bearer key/with+odd=chars, json "key\\/with+odd=chars", '
        "url key%2Fwith%2Bodd%3Dchars; short keys are left alone: abc"
    )
    out = s.text(text)
    assert "sk-one" not in out and "odd" not in out and out.count("[redacted]") == 4
    assert out.endswith("left alone: abc")
    assert s.bytes(text.encode()) == out.encode()
    assert s.headers([("x-echo", "sk-one-0123456789")]) == [("x-echo", "[redacted]")]
    empty = Scrubber([])
    assert not empty and empty.text("sk-one-0123456789") == "sk-one-0123456789"

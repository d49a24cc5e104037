"""Team access, pure parts: credentials, the profile of a user's request, the loopback rule."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from llmrouter.access import (
    CHALLENGE,
    Choice,
    Credentials,
    Identity,
    Refusal,
    authenticate,
    check,
    choose_profile,
    hash_token,
    is_loopback,
    new_token,
    open_proxy_error,
    parse,
)
from llmrouter.access import credentials as creds_mod
from llmrouter.config import RouterConfig, parse_config
from llmrouter.routing.profiles import HostIndex
from llmrouter.schema import Access

ANTHROPIC, OPENAI, OTHER = "api.anthropic.com", "api.openai.com", "example.org"
ALICE_TOKEN = "alice-token-0123456789abcdefghij"
COLON_TOKEN = "a:b:c::d"  # a token may hold colons: split at the FIRST one only
BOB_TOKEN = "bob-token-9876543210zyxwvutsrqpo"


def basic(userpass: str | bytes) -> str:
    raw = userpass.encode() if isinstance(userpass, str) else userpass
    return "Basic " + base64.b64encode(raw).decode()


@pytest.fixture(scope="module")
def cfg() -> RouterConfig:
    prov = {"base_url": "https://x.example.com", "api": "anthropic"}
    return parse_config(
        {
            "providers": {"x": prov},
            "profiles": {
                "default": {"hosts": [ANTHROPIC, OPENAI], "providers": ["x"]},
                "work": {"hosts": [ANTHROPIC], "providers": ["x"]},
                "cheap": {"hosts": [ANTHROPIC], "providers": ["x"]},
                "openai": {"hosts": [OPENAI], "providers": ["x"]},
                "admin": {"hosts": [ANTHROPIC, OPENAI], "providers": ["x"]},
            },
            "access": {
                "users": {
                    "alice": {
                        "token_sha256": hash_token(ALICE_TOKEN),
                        "profiles": ["default", "work", "cheap"],
                        "default_profile": "cheap",
                    },
                    "bob": {"token_sha256": hash_token(BOB_TOKEN), "profiles": ["work"]},
                    "carol": {"token_sha256": hash_token(COLON_TOKEN), "profiles": ["openai"]},
                }
            },
        },
        {},
    )


@pytest.fixture(scope="module")
def access(cfg: RouterConfig) -> Access:
    assert cfg.access is not None
    return cfg.access


@pytest.fixture(scope="module")
def index(cfg: RouterConfig) -> HostIndex:
    return HostIndex(cfg)


# -- tokens and hashes ---------------------------------------------------------------------


def test_hash_token_is_sha256_hex_of_utf8() -> None:
    assert hash_token("abc") == hashlib.sha256(b"abc").hexdigest()
    assert hash_token(b"abc") == hash_token("abc")
    assert hash_token("é") == hashlib.sha256("é".encode()).hexdigest()


def test_new_tokens_are_long_random_and_url_safe() -> None:
    tokens = {new_token() for _ in range(50)}
    assert len(tokens) == 50
    for t in tokens:
        assert len(t) >= 43  # 256 bits in URL-safe base64; >= 22 chars would be 128 bits
        assert set(t) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


# -- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "   "])
def test_missing_credentials(header: str | None) -> None:
    r = parse(header)
    assert isinstance(r, Refusal)
    assert (r.kind, r.status) == ("missing", 407)
    assert r.headers == [("Proxy-Authenticate", 'Basic realm="llmrouter"')]
    assert CHALLENGE == 'Basic realm="llmrouter"'
    assert "HTTPS_PROXY=http://NAME:TOKEN@host:port" in r.message


def test_parse_splits_the_password_at_the_first_colon() -> None:
    c = parse(basic(f"carol:{COLON_TOKEN}"))
    assert isinstance(c, Credentials)
    assert (c.user, c.profile) == ("carol", None)
    assert c.digest == hash_token(COLON_TOKEN)


def test_parse_name_plus_profile() -> None:
    c = parse(basic(f"alice+work:{ALICE_TOKEN}"))
    assert isinstance(c, Credentials)
    assert (c.user, c.profile) == ("alice", "work")
    c = parse(basic(f"alice+:{ALICE_TOKEN}"))  # an empty profile names none
    assert isinstance(c, Credentials) and c.profile is None


@pytest.mark.parametrize(
    "header",
    [
        f"basic {base64.b64encode(f'alice:{ALICE_TOKEN}'.encode()).decode()}",
        f"BASIC   {base64.b64encode(f'alice:{ALICE_TOKEN}'.encode()).decode()}  ",
    ],
)
def test_scheme_is_case_insensitive_and_whitespace_tolerant(header: str) -> None:
    c = parse(header)
    assert isinstance(c, Credentials) and c.user == "alice"


def test_credentials_repr_hides_the_digest() -> None:
    c = parse(basic(f"alice:{ALICE_TOKEN}"))
    assert isinstance(c, Credentials)
    assert c.digest not in repr(c) and ALICE_TOKEN not in repr(c)


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        ("Bearer " + ALICE_TOKEN, "only Basic is supported"),
        ("Digest username=alice", "only Basic is supported"),
        ("Basic", "no user name"),
        ("Basic !!!not-base64!!!", "not base64"),
        ("Basic " + base64.b64encode(b"alice").decode()[:-1], "not base64"),
        ("Basic ñ", "not base64"),  # non-ASCII in the header itself
        (basic("alice"), "sent no token"),  # no colon
        (basic("alice:"), "sent no token"),  # empty password
        (basic(f":{ALICE_TOKEN}"), "no user name"),
        (basic(f"+work:{ALICE_TOKEN}"), "no user name"),
        (basic(b"\xff\xfe:" + ALICE_TOKEN.encode()), "not UTF-8"),
        ("Basic " + "A" * 5000, "longer than 4096"),
    ],
)
def test_bad_credentials(header: str, detail: str) -> None:
    r = parse(header)
    assert isinstance(r, Refusal)
    assert (r.kind, r.status) == ("bad", 407)
    assert r.headers == [("Proxy-Authenticate", CHALLENGE)]
    assert detail in r.detail
    assert ALICE_TOKEN not in r.detail + r.message


def test_non_utf8_token_is_hashed_as_bytes_and_just_fails(access: Access) -> None:
    r = check(access, basic(b"alice:\xff\xfe" + ALICE_TOKEN.encode()))
    assert isinstance(r, Refusal) and r.kind == "bad"
    assert r.detail == "wrong token for user 'alice'"


def test_a_bearer_scheme_name_in_the_log_is_bounded() -> None:
    r = parse("X" * 200 + " abc")
    assert isinstance(r, Refusal) and len(r.detail) < 150


# -- authentication ------------------------------------------------------------------------


def test_right_token(access: Access) -> None:
    assert check(access, basic(f"alice:{ALICE_TOKEN}")) == Identity("alice", None)
    assert check(access, basic(f"carol:{COLON_TOKEN}")) == Identity("carol", None)


def test_right_token_with_an_allowed_profile(access: Access) -> None:
    assert check(access, basic(f"alice+work:{ALICE_TOKEN}")) == Identity("alice", "work")


def test_wrong_token(access: Access) -> None:
    r = check(access, basic(f"alice:{BOB_TOKEN}"))
    assert isinstance(r, Refusal) and (r.kind, r.status) == ("bad", 407)
    assert r.detail == "wrong token for user 'alice'"


def test_a_colon_token_is_not_split_further(access: Access) -> None:
    for wrong in ("a", "a:b", "a:b:c:", "a:b:c::d:"):
        r = check(access, basic(f"carol:{wrong}"))
        assert isinstance(r, Refusal) and r.kind == "bad", wrong


def test_unknown_user_looks_like_a_wrong_token_to_the_client(access: Access) -> None:
    unknown = check(access, basic(f"mallory:{ALICE_TOKEN}"))
    wrong = check(access, basic(f"alice:{BOB_TOKEN}"))
    assert isinstance(unknown, Refusal) and isinstance(wrong, Refusal)
    assert unknown.message == wrong.message  # no user enumeration through the answer
    assert unknown.detail == "unknown user 'mallory'"


def test_another_users_token_does_not_work(access: Access) -> None:
    r = check(access, basic(f"bob:{ALICE_TOKEN}"))
    assert isinstance(r, Refusal) and r.kind == "bad"


def test_profile_outside_the_users_set_is_forbidden(access: Access) -> None:
    for profile in ("admin", "no-such-profile"):
        r = check(access, basic(f"alice+{profile}:{ALICE_TOKEN}"))
        assert isinstance(r, Refusal)
        assert (r.kind, r.status, r.headers) == ("forbidden", 403, [])
        assert (
            r.message
            == f"user alice may not use profile {profile!r}; allowed: default, work, cheap"
        )


def test_wrong_token_with_a_profile_is_407_not_403(access: Access) -> None:
    # Never tell an unauthenticated client anything about a user's profiles.
    r = check(access, basic(f"alice+admin:{BOB_TOKEN}"))
    assert isinstance(r, Refusal) and r.status == 407 and "admin" not in r.message


def test_comparison_is_constant_time_on_hashes(
    access: Access, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(creds_mod.hmac, "compare_digest", spy)
    check(access, basic(f"alice:{ALICE_TOKEN}"))
    check(access, basic(f"nobody:{ALICE_TOKEN}"))  # an unknown user is compared too
    assert len(seen) == 2
    for a, b in seen:
        assert len(a) == len(b) == 64  # hex digests, never the raw token
        assert ALICE_TOKEN not in (a, b)


def test_reload_takes_effect_on_the_stored_credentials(cfg: RouterConfig) -> None:
    """Credentials kept for a connection are re-checked against whichever config is current."""
    c = parse(basic(f"bob:{BOB_TOKEN}"))
    assert isinstance(c, Credentials)
    assert cfg.access is not None
    assert authenticate(cfg.access, c) == Identity("bob", None)
    data = cfg.model_dump(mode="json")
    del data["access"]["users"]["bob"]
    revoked = parse_config(data, {})
    assert revoked.access is not None
    r = authenticate(revoked.access, c)
    assert isinstance(r, Refusal) and r.status == 407
    data["access"]["users"]["bob"] = {"token_sha256": hash_token("new"), "profiles": ["work"]}
    rotated = parse_config(data, {})
    assert rotated.access is not None
    r = authenticate(rotated.access, c)
    assert isinstance(r, Refusal) and r.detail == "wrong token for user 'bob'"


def test_refusals_never_carry_the_token_or_its_hash(access: Access) -> None:
    headers = [
        basic(f"alice:{BOB_TOKEN}"),
        basic(f"mallory:{ALICE_TOKEN}"),
        basic(f"alice+admin:{ALICE_TOKEN}"),
        basic(f"bob:{ALICE_TOKEN}"),
    ]
    secrets = [ALICE_TOKEN, BOB_TOKEN, hash_token(ALICE_TOKEN), hash_token(BOB_TOKEN)]
    for h in headers:
        r = check(access, h)
        assert isinstance(r, Refusal)
        text = f"{r.message} {r.detail} {r!r}"
        assert not any(s in text for s in [*secrets, h, h.split()[1]])


# -- the profile of a user's request ---------------------------------------------------------


def choose(
    cfg: RouterConfig,
    index: HostIndex,
    user: str,
    host: str = ANTHROPIC,
    *,
    hint: str | None = None,
    header: str | None = None,
    default: str = "default",
) -> Choice:
    return choose_profile(cfg, index, user, host, 443, hint=hint, header=header, default=default)


def test_name_plus_profile_wins(cfg: RouterConfig, index: HostIndex) -> None:
    assert choose(cfg, index, "alice", hint="work", header="default") == Choice("work")


def test_header_within_the_set(cfg: RouterConfig, index: HostIndex) -> None:
    assert choose(cfg, index, "alice", header="work") == Choice("work")


def test_header_outside_the_set_is_forbidden(cfg: RouterConfig, index: HostIndex) -> None:
    c = choose(cfg, index, "alice", header="admin")
    assert c.profile is None
    assert c.forbidden == (
        "user alice may not use profile 'admin' (from the X-Router-Profile header); "
        "allowed: default, work, cheap"
    )


def test_hint_outside_the_set_is_forbidden_even_with_a_good_header(
    cfg: RouterConfig, index: HostIndex
) -> None:
    c = choose(cfg, index, "alice", hint="admin", header="work")
    assert c.forbidden is not None and "NAME+PROFILE" in c.forbidden


def test_users_default_profile(cfg: RouterConfig, index: HostIndex) -> None:
    assert choose(cfg, index, "alice") == Choice("cheap")


def test_users_default_profile_not_serving_the_host_falls_back(
    cfg: RouterConfig, index: HostIndex
) -> None:
    # cheap serves only api.anthropic.com; on api.openai.com the router's default is used.
    assert choose(cfg, index, "alice", OPENAI) == Choice("default")


def test_usual_choice_is_restricted_to_the_users_profiles(
    cfg: RouterConfig, index: HostIndex
) -> None:
    # bob has no default_profile and router_profile `default` is not his: his first serving one.
    assert choose(cfg, index, "bob") == Choice("work")
    assert choose(cfg, index, "bob", default="work") == Choice("work")


def test_no_allowed_profile_serves_the_host(cfg: RouterConfig, index: HostIndex) -> None:
    c = choose(cfg, index, "bob", OPENAI)
    assert c.profile is None
    assert c.forbidden == "user bob may not use any profile serving api.openai.com; allowed: work"


def test_pass_through_host(cfg: RouterConfig, index: HostIndex) -> None:
    assert choose(cfg, index, "bob", OTHER) == Choice(None)


def test_named_profile_not_serving_the_host_falls_back_with_a_note(
    cfg: RouterConfig, index: HostIndex
) -> None:
    c = choose(cfg, index, "alice", OPENAI, hint="work")
    assert c == Choice("default", "profile 'work' (NAME+PROFILE) does not serve "
                                  "api.openai.com; using 'default'")  # fmt: skip
    c = choose(cfg, index, "alice", OTHER, header="work")
    assert c.profile is None and c.forbidden is None and c.note is not None


def test_unconfigured_user_is_forbidden(cfg: RouterConfig, index: HostIndex) -> None:
    assert choose(cfg, index, "mallory").forbidden == "user mallory is not configured"


def test_long_named_profile_is_bounded_in_the_message(cfg: RouterConfig, index: HostIndex) -> None:
    c = choose(cfg, index, "alice", header="x" * 5000)
    assert c.forbidden is not None and len(c.forbidden) < 200


# -- safe by default -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.1.2.3", "127.255.255.254", "::1", "[::1]", "::1%lo", "localhost",
     "LOCALHOST", "localhost.", " 127.0.0.1 ", "::ffff:127.0.0.1", "0:0:0:0:0:0:0:1"],
)  # fmt: skip
def test_loopback(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host",
    ["", " ", "0.0.0.0", "::", "[::]", "192.168.1.10", "10.0.0.1", "128.0.0.1", "::2",
     "::ffff:10.0.0.1", "example.com", "localhost.example.com", "my-laptop", "fe80::1"],
)  # fmt: skip
def test_not_loopback(host: str) -> None:
    assert not is_loopback(host)


def test_open_proxy_error() -> None:
    assert open_proxy_error("127.0.0.1", has_access=False, router_open=False) is None
    assert open_proxy_error("0.0.0.0", has_access=True, router_open=False) is None
    assert open_proxy_error("0.0.0.0", has_access=False, router_open=True) is None
    msg = open_proxy_error("", has_access=False, router_open=False)
    assert msg is not None
    assert "'' (every interface)" in msg
    assert "python -m llmrouter.access add NAME --profiles" in msg
    assert "--listen-host 127.0.0.1" in msg
    assert "router_open=true" in msg
    msg = open_proxy_error("192.168.1.10", has_access=False, router_open=False)
    assert msg is not None and "'192.168.1.10' without" in msg


# -- properties ----------------------------------------------------------------------------

_names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)


@given(header=st.text(max_size=300))
def test_any_header_gives_credentials_or_a_refusal(header: str) -> None:
    assert isinstance(parse(header), Credentials | Refusal)


@given(raw=st.binary(max_size=300))
def test_any_basic_payload_gives_credentials_or_a_refusal(raw: bytes) -> None:
    r = parse(basic(raw))
    assert isinstance(r, Credentials | Refusal)
    if isinstance(r, Refusal):
        assert r.status == 407


@given(name=_names, profile=st.none() | _names, token=st.binary(min_size=1, max_size=100))
def test_token_is_everything_after_the_first_colon(
    name: str, profile: str | None, token: bytes
) -> None:
    user = f"{name}+{profile}" if profile else name
    c = parse(basic(user.encode() + b":" + token))
    assert isinstance(c, Credentials)
    assert (c.user, c.profile, c.digest) == (name, profile, hash_token(token))

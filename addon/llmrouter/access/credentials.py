"""Proxy credentials: parsed once from a `Proxy-Authorization` header, then checked against
the current `access` config on every request, so that a reload that removes or changes a user
takes effect on that user's next request, even on a connection that is already open. Pure.

Only a hash of each token is stored, and it is SHA-256, not a password hash (bcrypt, scrypt,
argon2): tokens are >= 128-bit random strings made by `python -m llmrouter.access add`, not
passwords people choose. Guessing a 2^128 space is out of reach however fast the hash is, so a
slow KDF would add nothing but ~100 ms of blocked event loop (every flow waits) per check.
One SHA-256 takes about a microsecond.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Literal

from llmrouter.schema import Access

REALM = "llmrouter"
CHALLENGE = f'Basic realm="{REALM}"'  # the Proxy-Authenticate value of every 407
TOKEN_BYTES = 32  # 256 bits from `secrets`
_MAX_HEADER = 4096  # longer is not a credential we made: refuse without decoding it
# Compared against when the user is unknown, so that the answer takes the same time.
_NO_USER = hashlib.sha256(b"llmrouter: no such user").hexdigest()

Kind = Literal["missing", "bad", "forbidden"]

_HOW = "put NAME:TOKEN in the proxy URL: HTTPS_PROXY=http://NAME:TOKEN@host:port"


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a client presented; kept per client connection and re-checked on each request."""

    user: str
    profile: str | None  # from NAME+PROFILE
    # SHA-256 hex of the presented token: only ever compared, never shown (repr hides it).
    digest: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated user, and the profile named by NAME+PROFILE (one of the user's)."""

    user: str
    profile: str | None


@dataclass(frozen=True, slots=True)
class Refusal:
    kind: Kind  # missing | bad -> 407 with the challenge; forbidden -> 403
    message: str  # for the client: says what to do, never whether a user name exists
    detail: str  # for the log: names the user; never a token, a hash or the header

    @property
    def status(self) -> int:
        return 403 if self.kind == "forbidden" else 407

    @property
    def headers(self) -> list[tuple[str, str]]:
        return [("Proxy-Authenticate", CHALLENGE)] if self.status == 407 else []


def hash_token(token: str | bytes) -> str:
    """The `token_sha256` of a token (a str is hashed as UTF-8)."""
    raw = token.encode("utf-8") if isinstance(token, str) else token
    return hashlib.sha256(raw).hexdigest()


def new_token() -> str:
    """A fresh token: 256 random bits, URL-safe (no ':' or '@' to escape in a proxy URL)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def _bad(detail: str) -> Refusal:
    return Refusal("bad", f"proxy authentication failed: unknown user or wrong token; {_HOW}",
                   detail)  # fmt: skip


def _shown(name: str) -> str:
    """A client-supplied name as it may appear in a log line: quoted, bounded."""
    return repr(name[:64] + ("..." if len(name) > 64 else ""))


def parse(header: str | None) -> Credentials | Refusal:
    """Basic credentials `NAME[+PROFILE]:TOKEN`; the token is everything after the FIRST
    colon, so a token may itself contain colons."""
    if header is None or not header.strip():
        return Refusal("missing", f"proxy authentication required: {_HOW}", "no credentials")
    if len(header) > _MAX_HEADER:
        return _bad(f"Proxy-Authorization longer than {_MAX_HEADER} characters")
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return _bad(f"{_shown(scheme)} proxy authentication (only Basic is supported)")
    try:
        raw = base64.b64decode(rest.strip(), validate=True)
    except (binascii.Error, ValueError):
        return _bad("Basic credentials that are not base64")
    name_raw, colon, token = raw.partition(b":")
    try:
        name = name_raw.decode("utf-8")
    except UnicodeDecodeError:
        return _bad("a user name that is not UTF-8")
    user, _, profile = name.partition("+")
    if not user:
        return _bad("no user name")
    if not colon or not token:
        # An empty password also breaks some clients: the token always goes there.
        return _bad(f"user {_shown(user)} sent no token")
    return Credentials(user, profile or None, hash_token(token))


def authenticate(access: Access, creds: Credentials) -> Identity | Refusal:
    """Check credentials against the current config: constant-time on the hashes."""
    user = access.users.get(creds.user)
    expected = user.token_sha256 if user is not None else _NO_USER
    matches = hmac.compare_digest(creds.digest, expected)
    if user is None:
        return _bad(f"unknown user {_shown(creds.user)}")
    if not matches:
        return _bad(f"wrong token for user {_shown(creds.user)}")
    if creds.profile is not None and creds.profile not in user.profiles:
        allowed = ", ".join(user.profiles)
        msg = f"user {creds.user} may not use profile {_shown(creds.profile)}; allowed: {allowed}"
        return Refusal("forbidden", msg, msg)
    return Identity(creds.user, creds.profile)


def check(access: Access, header: str | None) -> Identity | Refusal:
    """`parse` then `authenticate`: for a header seen once."""
    creds = parse(header)
    return creds if isinstance(creds, Refusal) else authenticate(access, creds)

"""The doctor's checks: each returns a `Check` that says what it found and, when it is not ok,
how to fix it. Network checks go through the proxy only, with short timeouts; nothing here
prints or logs a key, token or proxy password.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import ssl
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from cryptography import x509

PAGES_HOST = "llmrouter.invalid"  # proxy.pages.HOST, without importing the proxy package
PAGES_ALLOW = r"^llmrouter\.invalid:\d+$"  # proxy.pages.ALLOW_PATTERN
_ENV_ERROR = re.compile(r"^(\S+): environment variable (\w+) is not set$")


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str  # ok | warn | fail | skip
    detail: str
    fix: str = ""


def _ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def _warn(name: str, detail: str, fix: str) -> Check:
    return Check(name, "warn", detail, fix)


def _fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, "fail", detail, fix)


@dataclass(frozen=True, slots=True)
class Proxy:
    host: str
    port: int
    user: str | None = None
    password: str | None = None

    def url(self, user: str | None = None, password: str | None = None) -> str:
        """The proxy URL; a password is shown only when given here, never the real one."""
        user = user if user is not None else self.user
        cred = "" if not user else f"{user}:{password}@" if password else f"{user}@"
        return f"http://{cred}{self.host}:{self.port}"

    @property
    def shown(self) -> str:
        return self.url(password="***" if self.password else None)

    def auth(self) -> dict[str, str]:
        if not self.user:
            return {}
        token = base64.b64encode(f"{self.user}:{self.password or ''}".encode()).decode()
        return {"Proxy-Authorization": f"Basic {token}"}


def parse_proxy(text: str) -> Proxy:
    """`http://[user[:password]@]host:port` or `host:port`; raises ValueError."""
    parts = urlsplit(text if "://" in text else f"http://{text}")
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"not an http:// proxy URL: {parts.scheme}://{parts.hostname or '?'}")
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return Proxy(parts.hostname, parts.port or 8080, user, password)


def bundle_command(ca: Path, bundle: Path) -> str:
    import certifi

    return f"cat {certifi.where()} {ca} > {bundle}   (or: make doctor ARGS=--write-bundle)"


# -- files --------------------------------------------------------------------------------------


def check_ca(ca: Path, now: datetime | None = None) -> tuple[Check, x509.Certificate | None]:
    now = now or datetime.now(UTC)
    renew = f"move {ca.parent}/mitmproxy-ca*.pem away and restart the router: mitmproxy makes a "
    renew += "new CA; then rebuild the bundle"
    if not ca.is_file():
        first = f"start the router once (`make run`): mitmproxy writes its CA to {ca.parent} on "
        first += "its first start. Another confdir? Pass --confdir DIR."
        return _fail("CA", f"no CA at {ca}", first), None
    try:
        cert = x509.load_pem_x509_certificate(ca.read_bytes())
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except (ValueError, x509.ExtensionNotFound, OSError) as e:
        return _fail("CA", f"{ca} is not a usable CA certificate ({e})", renew), None
    if not is_ca:
        return _fail("CA", f"{ca} is a certificate but not a CA", renew), None
    until = cert.not_valid_after_utc
    if until <= now:
        return _fail("CA", f"{ca} expired on {until:%Y-%m-%d}", renew), cert
    return _ok("CA", f"{ca}, valid until {until:%Y-%m-%d}"), cert


def check_bundle(bundle: Path, ca: x509.Certificate | None, ca_path: Path) -> Check:
    fix = bundle_command(ca_path, bundle)
    if not bundle.is_file():
        return _fail("bundle", f"no bundle at {bundle} (Python, curl and Codex need it)", fix)
    try:
        with warnings.catch_warnings():  # a public root or two have odd serials: not our case
            warnings.simplefilter("ignore")
            certs = x509.load_pem_x509_certificates(bundle.read_bytes())
    except (ValueError, OSError) as e:
        return _fail("bundle", f"{bundle} is not a PEM bundle ({e})", fix)
    if ca is not None and ca not in certs:
        return _fail("bundle", f"{bundle} lacks the router's current CA (made from an older "
                     "CA, or another confdir's)", fix)  # fmt: skip
    if len(certs) < 2:
        return _warn("bundle", f"{bundle} holds mitmproxy's CA alone: SSL_CERT_FILE and "
                     "--cacert replace the trust store, so every host that is not intercepted "
                     "would fail", fix)  # fmt: skip
    return _ok("bundle", f"{bundle}: the CA and {len(certs) - 1} public roots")


# -- the proxy ----------------------------------------------------------------------------------


def check_proxy(proxy: Proxy, timeout: float = 5.0) -> Check:
    """Plain HTTP through the proxy to its own host: any HTTP answer means it is up."""
    conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=timeout)
    where = f"{proxy.host}:{proxy.port}"
    try:
        headers = {"Host": PAGES_HOST, **proxy.auth()}
        conn.request("GET", f"http://{PAGES_HOST}/healthz", headers=headers)
        resp = conn.getresponse()
        resp.read()
    except ConnectionRefusedError:
        return _fail("proxy", f"nothing listens on {where}",
                     "start the router: `make run` (another port: `make run PORT=N`, then "
                     "`make doctor PORT=N`)")  # fmt: skip
    except (OSError, http.client.HTTPException) as e:
        return _fail("proxy", f"{where} does not answer HTTP like a proxy ({e or type(e)})",
                     "something else on that port? The router prints `proxy listening at "
                     "ADDRESS` when it starts: pass that address")  # fmt: skip
    finally:
        conn.close()
    if resp.status == 407:
        return _fail("proxy", f"{proxy.shown} wants proxy credentials (407)",
                     "put them in the proxy URL: --proxy http://USER:TOKEN@host:port")  # fmt: skip
    return _ok("proxy", f"{where} answers HTTP ({resp.status})")


def tls_get(proxy: Proxy, cafile: Path, path: str, timeout: float) -> tuple[int, bytes]:
    """GET https://llmrouter.invalid{path} through the proxy, trusting only `cafile`."""
    ctx = ssl.create_default_context(cafile=str(cafile))
    conn = http.client.HTTPSConnection(proxy.host, proxy.port, timeout=timeout, context=ctx)
    conn.set_tunnel(PAGES_HOST, 443, headers=proxy.auth())
    try:
        conn.request("GET", path, headers={"Host": PAGES_HOST})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def tls_handshake(proxy: Proxy, cafile: Path, host: str, timeout: float) -> None:
    """CONNECT and a TLS handshake only: the router (lazy connections) goes nowhere upstream."""
    ctx = ssl.create_default_context(cafile=str(cafile))
    conn = http.client.HTTPSConnection(proxy.host, proxy.port, timeout=timeout, context=ctx)
    conn.set_tunnel(host, 443, headers=proxy.auth())
    try:
        conn.connect()
    finally:
        conn.close()


def _untrusted(name: str, host: str, cafile: Path, e: ssl.SSLCertVerificationError) -> Check:
    return _fail(name, f"the proxy's certificate for {host} does not verify with {cafile}: "
                 f"{e.verify_message}",
                 "the router runs with another CA than this file's: pass its --confdir, or "
                 "rebuild the bundle from its CA")  # fmt: skip


def check_tls(
    proxy: Proxy, cafile: Path, who: str, timeout: float = 5.0, hosts: tuple[str, ...] = ()
) -> tuple[Check, bytes | None]:
    """A full TLS round trip with the CA file a client would use; the /healthz body if ok.
    Without the router's pages, a handshake for an intercepted host still tests the CA."""
    name, url = f"TLS ({who})", f"https://{PAGES_HOST}/healthz"
    try:
        status, body = tls_get(proxy, cafile, "/healthz", timeout)
    except ssl.SSLCertVerificationError as e:
        return _untrusted(name, PAGES_HOST, cafile, e), None
    except (OSError, http.client.HTTPException) as e:
        if " 407 " in str(e):  # the router has `access` users: the CONNECT needs one
            return _fail(name, f"{proxy.shown} wants proxy credentials for the tunnel (407)",
                         "put a user's NAME:TOKEN in the proxy URL: --proxy "
                         "http://NAME:TOKEN@host:port (or in $HTTPS_PROXY)"), None  # fmt: skip
        no_pages = f"no TLS round trip to {url} through {proxy.shown} ({e})"
        fix = (f"allow_hosts set by hand leaves {PAGES_HOST} out: add {PAGES_ALLOW} to it (the "
               "router keeps a hand-set allow_hosts as it is); or that proxy is not the router "
               "(mitmproxy without -s addon/router.py)")  # fmt: skip
        for host in hosts[:1]:
            try:
                tls_handshake(proxy, cafile, host, timeout)
            except ssl.SSLCertVerificationError as e2:
                return _untrusted(name, host, cafile, e2), None
            except (OSError, http.client.HTTPException):
                break
            return _warn(name, f"{host} verified with {cafile}, but {no_pages}", fix), None
        return _fail(name, no_pages, fix), None
    if status not in (200, 503):
        return _fail(name, f"{url} answered HTTP {status}",
                     "is that proxy the router (mitmproxy -s addon/router.py)?"), None  # fmt: skip
    return _ok(name, f"{url} through the proxy, verified with {cafile}"), body


def check_health(body: bytes) -> Check:
    try:
        detail = json.loads(body)
    except ValueError:
        return _warn("health", "/healthz answered something that is not JSON", "")
    if detail.get("ok"):
        return _ok("health", "every profile has a usable provider")
    return _warn("health", str(detail.get("reason", "unhealthy")),
                 f"that profile's requests fail until a provider recovers; see "
                 f"https://{PAGES_HOST}/status or `router.status`")  # fmt: skip


# -- config and shell ---------------------------------------------------------------------------


def _env_names(node: object) -> set[str]:
    """${VAR} (without a default) in the strings of parsed YAML: comments do not count."""
    if isinstance(node, dict):
        return {n for v in node.values() for n in _env_names(v)}
    if isinstance(node, list):
        return {n for v in node for n in _env_names(v)}
    return set(re.findall(r"\$\{([A-Za-z_]\w*)\}", node)) if isinstance(node, str) else set()


def check_config(path: Path, env: Mapping[str, str]) -> list[Check]:
    """The config loads in this shell: every ${ENV} it needs is set, every field is valid."""
    import yaml

    from llmrouter.config import ConfigError, load_config

    try:
        cfg = load_config(path, env)
    except ConfigError as e:
        lines = str(e).splitlines()
        body = [ln.strip() for ln in lines[1:]] if len(lines) > 1 else lines
        out = [
            _fail("environment", f"{m.group(1)} needs ${{{m.group(2)}}}: not set in this shell",
                  f"export {m.group(2)}=... in the shell that runs the router (it reads the "
                  "variable at start and on each reload)")
            for ln in body if (m := _ENV_ERROR.match(ln))
        ]  # fmt: skip
        others = [ln for ln in body if not _ENV_ERROR.match(ln)]
        if others:
            fix = f"fix the file; `python -m llmrouter.config {path}` checks it"
            out.append(_fail("config", f"{path}: " + "; ".join(others), fix))
        return out
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    providers = data.get("providers", {}) if isinstance(data, dict) else {}
    enabled = [p for p in providers.values() if isinstance(p, dict) and p.get("enabled", True)]
    needed = sorted(_env_names(enabled))
    n, m = len(cfg.profiles), len(cfg.providers)
    detail = f"{path}: {n} profile{'s' * (n != 1)}, {m} provider{'s' * (m != 1)}"
    if needed:
        detail += "; the variables it needs are set: " + ", ".join(needed)
    return [_ok("config", detail)]


def check_shell(
    env: Mapping[str, str], ca: Path, hosts: list[str], router: Proxy | None = None
) -> list[Check]:
    """What this shell's variables would make a client do (only those that are set)."""
    out = []
    value = env.get("HTTPS_PROXY") or env.get("https_proxy")
    if value:
        try:
            p = parse_proxy(value)
        except ValueError as e:
            out.append(_fail("HTTPS_PROXY", str(e), "export HTTPS_PROXY=http://HOST:PORT"))
        else:
            if router is not None and (p.host, p.port) != (router.host, router.port):
                out.append(_warn("HTTPS_PROXY", f"points to {p.host}:{p.port}, not the router "
                                 f"at {router.host}:{router.port}",
                                 f"export HTTPS_PROXY={router.url()}"))  # fmt: skip
            if p.user and not p.password:
                out.append(_warn("HTTPS_PROXY", f"{p.shown} has a user but no password: Claude "
                                 "Code then fails every request with `Connection error.`",
                                 f"export HTTPS_PROXY={p.url(password='x')}  (the user picks "
                                 "the profile; the router ignores the password)"))  # fmt: skip
    for var in ("SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "CODEX_CA_CERTIFICATE"):
        path = env.get(var)
        if not path:
            continue
        if not Path(path).is_file():
            what = "the CA" if var == "NODE_EXTRA_CA_CERTS" else "the bundle"
            out.append(_fail(var, f"{var}={path}: no such file", f"point {var} at {what}"))
        elif var != "NODE_EXTRA_CA_CERTS" and ca.is_file() and Path(path).samefile(ca):
            out.append(_warn(var, f"{var} is mitmproxy's CA alone: it replaces the trust store, "
                             "so hosts that are not intercepted fail",
                             f"point {var} at the bundle instead"))  # fmt: skip
    skip = [n.strip().strip(".").lower() for n in (env.get("NO_PROXY") or env.get("no_proxy")
                                                   or "").split(",") if n.strip()]  # fmt: skip
    bypassed = [h for h in hosts if any(s == "*" or h == s or h.endswith("." + s) for s in skip)]
    if bypassed:
        out.append(_warn("NO_PROXY", f"NO_PROXY sends {', '.join(bypassed)} around the router",
                         "remove those hosts from NO_PROXY"))  # fmt: skip
    return out

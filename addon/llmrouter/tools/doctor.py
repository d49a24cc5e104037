"""`make doctor` / `python -m llmrouter.doctor`: is everything in place for clients to use the
router? Checks mitmproxy's CA and the bundle, that the proxy answers, a full TLS round trip
through it to https://llmrouter.invalid/healthz with the CA file each kind of client uses, that
the config loads with the environment variables it needs, and what this shell's proxy and CA
variables would make a client do. Each failure says how to fix it. Then it prints the exact
environment lines for Claude Code, Codex, the Python SDKs and curl.

    python -m llmrouter.doctor [--proxy http://127.0.0.1:8080] [--confdir ~/.mitmproxy]
                               [--config profiles.yaml] [--profile NAME] [--write-bundle]

Exit status 0 when nothing failed (warnings allowed), 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from llmrouter.tools._doctorchecks import (
    Check,
    Proxy,
    check_bundle,
    check_ca,
    check_config,
    check_health,
    check_proxy,
    check_shell,
    check_tls,
    parse_proxy,
)

_REPO_CONFIG = Path(__file__).resolve().parents[3] / "profiles.yaml"
DEFAULT_CONFIG = _REPO_CONFIG if _REPO_CONFIG.exists() else Path("profiles.yaml")
DEFAULT_PROXY = "http://127.0.0.1:8080"
_MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "skip"}


def run_checks(
    proxy: Proxy, confdir: Path, config: Path, env: Mapping[str, str], timeout: float = 5.0
) -> list[Check]:
    ca_path, bundle = confdir / "mitmproxy-ca-cert.pem", confdir / "bundle.pem"
    ca_check, ca = check_ca(ca_path)
    checks = [ca_check, check_bundle(bundle, ca, ca_path)]
    up = check_proxy(proxy, timeout)
    checks.append(up)
    hosts = _hosts(config, env)
    if up.status != "ok":
        checks.append(Check("TLS", "skip", "no proxy to go through"))
    else:
        body = None
        for cafile, who in ((bundle, "Python, curl, Codex: the bundle"),
                            (ca_path, "Claude Code, Node: the CA")):  # fmt: skip
            if not cafile.is_file():
                checks.append(Check(f"TLS ({who})", "skip", f"no {cafile}"))
                continue
            tls, got = check_tls(proxy, cafile, who, timeout, tuple(hosts))
            checks.append(tls)
            body = got if tls.status == "ok" else body
        if body is not None:
            checks.append(check_health(body))
    checks += check_config(config, env)
    checks += check_shell(env, ca_path, hosts, proxy)
    return checks


def _hosts(config: Path, env: Mapping[str, str]) -> list[str]:
    from llmrouter.config import ConfigError, load_config

    try:
        return load_config(config, env).intercepted_hosts()
    except ConfigError:
        return ["api.anthropic.com", "api.openai.com"]


def _has_access(config: Path, env: Mapping[str, str]) -> bool:
    from llmrouter.config import ConfigError, load_config

    try:
        return load_config(config, env).access is not None
    except ConfigError:
        return False


def client_lines(
    proxy: Proxy, confdir: Path, profile: str | None, access: bool = False
) -> list[str]:
    """Copy-paste environment for each client; a profile goes in the proxy user name (with
    `access`: NAME+PROFILE, and the user's token as the password)."""
    if access:
        name = (proxy.user or "NAME").partition("+")[0]
        user = f"{name}+{profile}" if profile else proxy.user or name
        url = proxy.url(user, "***" if proxy.password else "TOKEN")
    else:
        user = profile or proxy.user
        url = proxy.url(user, "x" if user and not proxy.password else "***" if proxy.password
                        else None)  # fmt: skip
    ca, bundle = confdir / "mitmproxy-ca-cert.pem", confdir / "bundle.pem"
    lines = [
        ("Claude Code", f"export HTTPS_PROXY={url} NODE_EXTRA_CA_CERTS={ca}"),
        ("Codex CLI", f"export HTTPS_PROXY={url} CODEX_CA_CERTIFICATE={bundle}"),
        ("Python SDKs", f"export HTTPS_PROXY={url} SSL_CERT_FILE={bundle}"),
        ("curl", f"curl --proxy {url} --cacert {bundle} https://api.anthropic.com/v1/messages ..."),
    ]
    out = [f"  {who + ':':<13} {line}" for who, line in lines]
    if access and not proxy.password:
        out.append("  (the router has users: NAME and TOKEN are yours, from `python -m "
                   "llmrouter.access add`; NAME+PROFILE picks one of your profiles)")  # fmt: skip
    elif proxy.password:
        out.append("  (*** is your proxy password: the doctor never prints it)")
    elif user:
        out.append(f"  (user {user} picks the profile; the password is ignored but Claude Code "
                   "needs one)")  # fmt: skip
    return out


def render(checks: list[Check]) -> list[str]:
    out = []
    width = max(len(c.name) for c in checks)
    for c in checks:
        out.append(f" {_MARK[c.status]}  {c.name:<{width}}  {c.detail}")
        if c.fix and c.status in ("fail", "warn"):
            out.append(f"       {'':<{width}}  fix: {c.fix}")
    return out


def write_bundle(confdir: Path) -> str:
    import certifi

    ca, bundle = confdir / "mitmproxy-ca-cert.pem", confdir / "bundle.pem"
    if not ca.is_file():
        raise FileNotFoundError(f"no CA at {ca}: start the router once (`make run`) first")
    tmp = bundle.with_suffix(".tmp")
    tmp.write_text(Path(certifi.where()).read_text() + ca.read_text())
    tmp.replace(bundle)
    return f"wrote {bundle} (public roots + {ca.name})"


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(
        prog="python -m llmrouter.doctor",
        description="Check that clients can use the router, and print their environment lines.",
    )
    parser.add_argument("--proxy", help=f"the router's address (default: $HTTPS_PROXY, else "
                        f"{DEFAULT_PROXY})")  # fmt: skip
    parser.add_argument("--confdir", default="~/.mitmproxy", help="mitmproxy's confdir (the CA)")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="the router's profiles.yaml")
    parser.add_argument("--profile", help="print client lines that select this profile")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per network check")
    parser.add_argument("--write-bundle", action="store_true",
                        help="write CONFDIR/bundle.pem (public roots + the CA) first")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        proxy = parse_proxy(args.proxy or env.get("HTTPS_PROXY") or env.get("https_proxy")
                            or DEFAULT_PROXY)  # fmt: skip
    except ValueError as e:
        parser.error(str(e))
    confdir = Path(args.confdir).expanduser()
    config = Path(args.config).expanduser()
    if args.write_bundle:
        try:
            print(write_bundle(confdir))
        except OSError as e:
            print(f"{parser.prog}: error: {e}", file=sys.stderr)
            return 1
    checks = run_checks(proxy, confdir, config, env, args.timeout)
    out = [f"llmrouter doctor: proxy {proxy.shown}, confdir {confdir}, config {config}", ""]
    out += render(checks)
    failed = sum(c.status == "fail" for c in checks)
    warned = sum(c.status == "warn" for c in checks)
    out += [
        "",
        "Environment for your clients:",
        *client_lines(proxy, confdir, args.profile, _has_access(config, env)),
        "",
    ]
    summary = "all good" if not failed and not warned else f"{failed} failed, {warned} warnings"
    out.append(f"doctor: {summary}")
    with contextlib.suppress(BrokenPipeError):
        print("\n".join(out))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

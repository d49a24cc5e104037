"""`python -m llmrouter.doctor`: green on a good setup (a real mitmdump), and each failure names
its fix."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import certifi
import pytest
from llmrouter.tools._doctorchecks import PAGES_ALLOW, PAGES_HOST, parse_proxy, tls_get
from llmrouter.tools.doctor import main
from routerproc import RouterProc, TestCA, free_port, provider, wait_for

CONFIG = {
    "providers": {"a": provider("http://127.0.0.1:9", api_key="${DOCTOR_TEST_KEY}")},
    "profiles": {"default": {"hosts": ["localhost"], "providers": ["a"]}},
}
ENV = {"DOCTOR_TEST_KEY": "sk-doctor-secret", "PATH": os.environ.get("PATH", "")}


def _doctor(
    capsys: pytest.CaptureFixture[str], *args: str, env: dict[str, str] = ENV
) -> tuple[int, str]:
    rc = main(list(args), env=env)
    return rc, capsys.readouterr().out


def _bundle(r: RouterProc) -> Path:
    """What the README tells users to make: public roots + mitmproxy's CA, in the confdir."""
    bundle = r.conf / "bundle.pem"
    bundle.write_text(
        Path(certifi.where()).read_text() + (r.conf / "mitmproxy-ca-cert.pem").read_text()
    )
    return bundle


def _started(router: Callable[..., RouterProc]) -> RouterProc:
    """The router with its pages, once its start-up finished (the pages say 503 until then)."""
    r = router(CONFIG, env={"DOCTOR_TEST_KEY": "sk-doctor-secret"})
    proxy = parse_proxy(r.proxy)
    ca = r.conf / "mitmproxy-ca-cert.pem"
    assert wait_for(lambda: tls_get(proxy, ca, "/healthz", 5)[0] == 200, 10)
    return r


@pytest.mark.e2e
def test_green_on_a_good_setup(
    router: Callable[..., RouterProc], capsys: pytest.CaptureFixture[str]
) -> None:
    r = _started(router)
    _bundle(r)
    args = ["--proxy", r.proxy, "--confdir", str(r.conf), "--config", str(r.config_path)]
    rc, out = _doctor(capsys, *args)
    assert rc == 0, out
    assert "FAIL" not in out and "WARN" not in out and "doctor: all good" in out
    for line in ("ok    CA", "ok    bundle", "ok    proxy", "ok    health"):
        assert line in out, line
    assert re.search(
        r"ok    TLS \(Python, curl, Codex: the bundle\) +https://llmrouter\.invalid/healthz", out
    )
    assert "ok    TLS (Claude Code, Node: the CA)" in out
    assert "the variables it needs are set: DOCTOR_TEST_KEY" in out
    assert "sk-doctor-secret" not in out  # names only, never values
    ca, bundle = r.conf / "mitmproxy-ca-cert.pem", r.conf / "bundle.pem"
    assert f"Claude Code:  export HTTPS_PROXY={r.proxy} NODE_EXTRA_CA_CERTS={ca}" in out
    assert f"Python SDKs:  export HTTPS_PROXY={r.proxy} SSL_CERT_FILE={bundle}" in out
    assert f"Codex CLI:    export HTTPS_PROXY={r.proxy} CODEX_CA_CERTIFICATE={bundle}" in out
    assert f"curl:         curl --proxy {r.proxy} --cacert {bundle} https://" in out
    # A profile goes in the proxy user, with the password Claude Code needs.
    rc, out = _doctor(capsys, *args, "--profile", "work")
    proxy_user = r.proxy.replace("http://", "http://work:x@")
    assert f"export HTTPS_PROXY={proxy_user} NODE_EXTRA_CA_CERTS=" in out

    # The module entry point, as `make doctor` runs it.
    proc = subprocess.run([sys.executable, "-m", "llmrouter.doctor", *args], capture_output=True,
                          timeout=60, env={**os.environ, **ENV}, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()

    # A bundle from another CA: the TLS round trip with it fails, and says what to do.
    (r.conf / "bundle.pem").write_text(Path(certifi.where()).read_text())
    rc, out = _doctor(capsys, *args)
    assert rc == 1
    assert "FAIL  bundle" in out and "lacks the router's current CA" in out
    assert re.search(r"FAIL  TLS \(Python, curl, Codex: the bundle\) .*does not verify", out)
    assert "ok    TLS (Claude Code, Node: the CA)" in out


def test_names_the_fix_on_a_missing_ca(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "profiles.yaml"
    config.write_text("providers:\n  a: {base_url: 'http://127.0.0.1:9', api: anthropic, "
                      "api_key: '${DOCTOR_UNSET_KEY}'}\nprofiles:\n  default: {hosts: [localhost], "
                      "providers: [a]}\n")  # fmt: skip
    proxy = f"http://127.0.0.1:{free_port()}"
    rc, out = _doctor(capsys, "--proxy", proxy, "--confdir", str(tmp_path / "conf"),
                      "--config", str(config), env={})  # fmt: skip
    assert rc == 1
    assert f"FAIL  CA           no CA at {tmp_path}/conf/mitmproxy-ca-cert.pem" in out
    assert "fix: start the router once (`make run`): mitmproxy writes its CA to" in out
    assert "FAIL  bundle" in out and f"fix: cat {certifi.where()} " in out
    assert (
        "FAIL  proxy        nothing listens on 127.0.0.1:" in out and "fix: start the router" in out
    )
    assert "skip  TLS" in out
    assert "FAIL  environment  providers.a.api_key needs ${DOCTOR_UNSET_KEY}: not set" in out
    assert "fix: export DOCTOR_UNSET_KEY=... in the shell that runs the router" in out
    assert "doctor: 4 failed, 0 warnings" in out


def test_write_bundle_and_shell_warnings(tmp_path: Path, test_ca: TestCA,
                                         capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "mitmproxy-ca-cert.pem").write_text(test_ca.ca_pem.read_text())  # a valid CA
    config = tmp_path / "profiles.yaml"
    config.write_text(
        "providers:\n  a: {base_url: 'http://127.0.0.1:9', api: anthropic}\n"
        "profiles:\n  default: {hosts: [api.anthropic.com], providers: [a]}\n"
    )
    proxy = f"http://127.0.0.1:{free_port()}"
    env = {"HTTPS_PROXY": "http://work@127.0.0.1:1", "NO_PROXY": "localhost,.anthropic.com",
           "SSL_CERT_FILE": str(conf / "mitmproxy-ca-cert.pem"),
           "NODE_EXTRA_CA_CERTS": str(tmp_path / "missing.pem")}  # fmt: skip
    rc, out = _doctor(capsys, "--proxy", proxy, "--confdir", str(conf), "--config", str(config),
                      "--write-bundle", env=env)  # fmt: skip
    assert f"wrote {conf}/bundle.pem (public roots + mitmproxy-ca-cert.pem)" in out
    assert "ok    CA" in out and "ok    bundle" in out
    assert "WARN  HTTPS_PROXY" in out and "points to 127.0.0.1:1, not the router" in out
    assert "has a user but no password: Claude Code then fails every request" in out
    assert "fix: export HTTPS_PROXY=http://work:x@127.0.0.1:1" in out
    assert "WARN  SSL_CERT_FILE" in out and "point SSL_CERT_FILE at the bundle instead" in out
    assert (
        f"FAIL  NODE_EXTRA_CA_CERTS  NODE_EXTRA_CA_CERTS={tmp_path}/missing.pem: no such file"
        in out
    )
    assert "WARN  NO_PROXY" in out and "NO_PROXY sends api.anthropic.com around the router" in out
    assert rc == 1  # the proxy is down and NODE_EXTRA_CA_CERTS points nowhere


@pytest.mark.e2e
def test_pages_unreachable_still_tests_the_ca(
    router: Callable[..., RouterProc], capsys: pytest.CaptureFixture[str]
) -> None:
    """allow_hosts set by hand without llmrouter.invalid: https cannot reach the router's pages,
    but a TLS handshake for an intercepted host still proves the CA (nothing goes upstream)."""
    r = router(CONFIG, "--set", r"allow_hosts=^localhost:\d+$",
               env={"DOCTOR_TEST_KEY": "sk-doctor-secret"})  # fmt: skip
    _bundle(r)
    args = ["--proxy", r.proxy, "--confdir", str(r.conf), "--config", str(r.config_path)]
    rc, out = _doctor(capsys, *args)
    assert rc == 0, out  # warnings only
    assert re.search(r"WARN  TLS \(Python, curl, Codex: the bundle\) +localhost verified with", out)
    assert "but no TLS round trip to https://llmrouter.invalid/healthz" in out
    assert "fix: allow_hosts set by hand leaves llmrouter.invalid out: add " + PAGES_ALLOW in out


def test_doctor_names_the_routers_own_host_and_pattern() -> None:
    from llmrouter.proxy import pages

    assert (PAGES_HOST, PAGES_ALLOW) == (pages.HOST, pages.ALLOW_PATTERN)


@pytest.mark.e2e
def test_a_router_with_users_needs_them_in_the_proxy_url(
    router: Callable[..., RouterProc], capsys: pytest.CaptureFixture[str]
) -> None:
    from llmrouter.access import hash_token, new_token

    token = new_token()
    users = {"alice": {"token_sha256": hash_token(token), "profiles": ["default"]}}
    r = router({**CONFIG, "access": {"users": users}},
               env={"DOCTOR_TEST_KEY": "sk-doctor-secret"})  # fmt: skip
    _bundle(r)
    args = ["--confdir", str(r.conf), "--config", str(r.config_path)]
    rc, out = _doctor(capsys, "--proxy", r.proxy, *args)
    assert rc == 1 and "ok    proxy" in out  # /healthz is open
    assert "wants proxy credentials for the tunnel (407)" in out
    assert "fix: put a user's NAME:TOKEN in the proxy URL" in out
    assert f"export HTTPS_PROXY=http://NAME:TOKEN@127.0.0.1:{r.port} NODE_EXTRA" in out
    assert "NAME+PROFILE picks one of your profiles" in out
    with_user = r.proxy.replace("http://", f"http://alice:{token}@")
    assert wait_for(lambda: _doctor(capsys, "--proxy", with_user, *args)[0] == 0, 10)
    rc, out = _doctor(capsys, "--proxy", with_user, *args, "--profile", "default")
    assert rc == 0 and "doctor: all good" in out and token not in out
    assert f"export HTTPS_PROXY=http://alice+default:***@127.0.0.1:{r.port} " in out

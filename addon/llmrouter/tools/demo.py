"""`make demo`: watch the router fail over within a minute, without leaving 127.0.0.1.

It starts two fake Anthropic providers in this process, ``steady`` and ``flaky`` (which fails
now and then the ways real providers do), and mitmweb with the router on a demo profile that
tries ``flaky`` first. Then the official ``anthropic`` SDK streams a few requests to
https://api.anthropic.com through the proxy; the router sends them to the fakes. Ctrl-C stops
everything.

    python -m llmrouter.tools.demo [--requests 8] [--proxy-port 8080] [--web-port 8081]
                             [--confdir DIR] [--exit-after-client]
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import certifi

from llmrouter.tools._demoweb import (
    DemoError,
    check_ports,
    check_router,
    start_mitmweb,
    stop_group,
    wait_ca,
    wait_ready,
)
from llmrouter.tools.fakeprovider import Behaviour, FakeProviderPool, parse_faults

SCRIPT = Path(__file__).resolve().parents[2] / "router.py"
MITMWEB = str(Path(sys.executable).with_name("mitmweb"))
HOST = "api.anthropic.com"
PROFILE = "demo"
MODEL = "claude-haiku-4-5"
# The fault kinds the end-to-end tests use; the seed makes every run tell the same story.
FLAKY_FAULTS = "503=0.15,529=0.15,429=0.1,inband_error=0.1,hang=0.05,drop=0.05"
SEED = 58
# A visibly fake key: even a request that escaped the router would carry nothing real.
CLIENT_KEY = "sk-ant-demo-client-key"
# mitmweb's default columns, plus the comment that carries the router's chain.
COLUMNS = ("tls", "icon", "path", "method", "status", "size", "time", "comment")
DONE = "demo: client finished"  # tests wait for this line
LOG_NAME = "demo-router.jsonl"  # in mitmproxy's confdir, beside the router's own router.jsonl
DEMO_PROFILES = """\
# The demo's profiles.yaml, written by llmrouter.tools.demo. Edit it while the demo runs (put steady
# first, say): the router reloads it within a second.
providers:
  flaky:  # fails now and then: 503, 529, 429 + retry-after, in-band error, reset, hang
    base_url: {flaky}
    api: anthropic
    api_key: demo-key-flaky  # replaces the client's key; as fake as everything here
    connect_timeout: 1  # short bounds: a hang becomes a failover within a second
    first_byte_timeout: 1
    first_token_timeout: 1
    response_timeout: 2
  steady:
    base_url: {steady}
    api: anthropic
    api_key: demo-key-steady
profiles:
  demo:
    hosts: [api.anthropic.com]
    providers: [flaky, steady]  # flaky first, so that failovers show
    strategy: failover
    affinity: false  # each request starts at flaky (affinity would keep the chat on steady)
health:  # short cooldowns, so that the next request tries flaky again
  backoff_initial: 0.5
  backoff_max: 1
  rate_limit_cooldown: 1
  max_cooldown: 1
"""


class Stop(BaseException):  # not Exception: the SDK would wrap it as a connection error
    """Ctrl-C or SIGTERM: raised from the signal handler, so cleanup runs in `finally`."""


@dataclass(frozen=True)
class Served:
    provider: str
    attempts: int
    text: str
    chain: str


# -- pure helpers ------------------------------------------------------------------------


def demo_config(flaky_url: str, steady_url: str) -> str:
    return DEMO_PROFILES.format(flaky=flaky_url, steady=steady_url)


def mitmweb_cmd(
    config: Path, log: Path, proxy_port: int, web_port: int, confdir: Path | None
) -> list[str]:
    cmd = [MITMWEB, "-s", str(SCRIPT), "--listen-host", "127.0.0.1", "-p", str(proxy_port),
           "--set", f"web_port={web_port}", "--set", "web_open_browser=false",
           "--set", f"router_config={config}", "--set", f"router_log={log}",
           "--set", f"router_profile={PROFILE}"]  # fmt: skip
    cmd += [a for col in COLUMNS for a in ("--set", f"web_columns={col}")]  # repeat = append
    return cmd + (["--set", f"confdir={confdir}"] if confdir else [])


def chain(lines: list[dict[str, Any]]) -> str:
    """JSONL attempt lines of one request -> `flaky 503 -> steady ok`."""

    def one(line: dict[str, Any]) -> str:
        outcome, status = line.get("outcome"), line.get("status")
        what = str(status) if outcome == "http_error" and status else str(outcome)
        return f"{line['provider']} {what}"

    return " -> ".join(one(x) for x in sorted(lines, key=lambda x: x.get("attempt", 0)))


def result_line(i: int, s: Served) -> str:
    words = " ".join(s.text.split()[:5])
    return f"#{i:<2} {s.provider:<6} attempts={s.attempts}  {s.chain:<34}  {words!r}"


def guide(url: str, proxy: str, bundle: Path, config: Path, log: Path) -> str:
    body = json.dumps({"model": MODEL, "max_tokens": 20, "stream": True,
                       "messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
    return f"""
What to look at in mitmweb: {url}
  * One row per request to {HOST}: the router sent each to a fake on 127.0.0.1 (the Path
    column shows the fake's port). A ↪ marks a failover. The Comment column has the chain,
    e.g. "flaky 529 3ms → steady 200 732ms · demo/failover"; click a row and open its Comment
    tab for all of it. The Request tab shows what the provider got (its key redacted), in the
    LLM view; the Response tab shows the streamed answer as text.
  * Options tab > Display Command Bar, then type in the bar at the bottom:
      router.explain @focus   why the selected flow went where it went: attempts, timings, cost
      router.status           each provider's health, cooldown and recent failures
Try it yourself in another terminal (only the fakes answer; nothing leaves 127.0.0.1):
  curl -sN --proxy {proxy} --cacert {bundle} https://{HOST}/v1/messages \\
    -H 'x-api-key: {CLIENT_KEY}' -H 'content-type: application/json' -d '{body}'
  Edit {config} (put steady first) and send it again: no restart needed.
The attempt log stays after Ctrl-C (the next demo starts it afresh); its report:
  {report_cmd(log)}
Press Ctrl-C to stop everything."""


def report_cmd(log: Path) -> str:
    """The report of the demo's log, runnable after the demo: this Python (the one with the
    router installed, relative when it is under the current directory, as `.venv/bin/python`)."""
    python = Path(sys.executable)
    with suppress(ValueError):
        python = python.relative_to(Path.cwd())
    return f"{shlex.quote(str(python))} -m llmrouter.report {shlex.quote(str(log))}"


# -- the client --------------------------------------------------------------------------


def journal_lines(log: Path) -> list[dict[str, Any]]:
    try:
        text = log.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(x) for x in text.splitlines() if x.strip().startswith("{")]


def next_chain(log: Path, seen: set[str], timeout: float = 3) -> str:
    """The attempts of the request that just ended: the client sends one at a time, so it is
    the one new request id. Lines come from a writer thread, so wait a little for them."""
    end = time.monotonic() + timeout
    while True:
        lines = [x for x in journal_lines(log) if x.get("request_id") not in seen]
        if any(x.get("final") for x in lines) or time.monotonic() > end:
            break
        time.sleep(0.05)
    if not lines:
        return "?"
    rid = lines[0]["request_id"]
    seen.add(rid)
    return chain([x for x in lines if x["request_id"] == rid])


def stream_one(client: Any, fakes: set[str], log: Path, seen: set[str]) -> Served:
    messages = [{"role": "user", "content": "Say hello, briefly."}]
    with client.messages.stream(model=MODEL, max_tokens=32, messages=messages) as stream:
        provider = stream.response.headers.get("x-router-provider", "")
        if provider not in fakes:
            # Only the router sets this header: without it the answer came from elsewhere.
            raise DemoError(f"an answer did not come from the demo's fakes (provider={provider!r})")
        attempts = int(stream.response.headers.get("x-router-attempts", "0"))
        text = "".join(stream.text_stream)
    return Served(provider, attempts, text, next_chain(log, seen))


def run_client(n: int, proxy: str, ca: Path, fakes: set[str], log: Path) -> list[Served]:
    import anthropic  # a dev dependency, imported late so --help works without it

    # Trust mitmproxy's CA alone: a request the proxy did not intercept fails its TLS
    # handshake with the real host instead of reaching it.
    verify = ssl.create_default_context(cafile=str(ca))
    http = anthropic.DefaultHttpxClient(proxy=proxy, verify=verify, trust_env=False)
    client = anthropic.Anthropic(api_key=CLIENT_KEY, base_url=f"https://{HOST}", max_retries=0,
                                 http_client=http, timeout=30)  # fmt: skip
    served, seen = [], set[str]()
    with client:
        for i in range(1, n + 1):
            try:
                s = stream_one(client, fakes, log, seen)
            except anthropic.APIError as e:
                raise DemoError(f"request #{i} failed: {e!r}") from None
            print(result_line(i, s), flush=True)
            served.append(s)
            time.sleep(0.3)  # lets flaky's short cooldown run out now and then
    return served


# -- main --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m llmrouter.tools.demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--requests", type=int, default=8, help="requests the client streams")
    p.add_argument("--proxy-port", type=int, default=8080)
    p.add_argument("--web-port", type=int, default=8081)
    p.add_argument("--confdir", type=Path, help="mitmproxy confdir (default ~/.mitmproxy)")
    p.add_argument("--exit-after-client", action="store_true",
                   help="stop everything once the client is done (no Ctrl-C needed)")  # fmt: skip
    args = p.parse_args(argv)
    if args.requests < 1:
        p.error("--requests must be at least 1")
    return args


def raise_stop(signum: int, frame: object) -> None:
    raise Stop


@contextmanager
def signals(handler: Any) -> Iterator[None]:
    """Ctrl-C and SIGTERM -> `handler` in the block. SIGINT is set explicitly because a shell
    that starts us in the background has it ignored."""
    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def run(args: argparse.Namespace, tmp: Path, pool: FakeProviderPool) -> None:
    check_ports(args.proxy_port, args.web_port)
    base = Behaviour(ttft=0.3, interval=0.06, deltas=8)
    steady = pool.start("steady", default=base)
    flaky = pool.start("flaky", default=base, faults=parse_faults(FLAKY_FAULTS), seed=SEED)
    print(f"demo: fake providers: flaky {flaky.url}, steady {steady.url}")
    config, out = tmp / "profiles.yaml", tmp / "mitmweb.log"
    config.write_text(demo_config(flaky.url, steady.url))
    confdir = args.confdir.expanduser().resolve() if args.confdir else None
    # The log outlives the demo (tmp does not) for the report; each demo starts it afresh.
    log = (confdir or Path.home() / ".mitmproxy") / LOG_NAME
    log.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    cmd = mitmweb_cmd(config, log, args.proxy_port, args.web_port, confdir)
    proc: subprocess.Popen[bytes] | None = None
    try:
        proc = start_mitmweb(cmd, out)
        print(f"demo: mitmweb pid {proc.pid} (profile {config}, its output {out})", flush=True)
        url = wait_ready(proc, out)
        check_router(url, config)
        ca = wait_ca(confdir or Path.home() / ".mitmproxy")
        bundle = tmp / "ca-bundle.pem"  # for the user's own clients: public roots + mitmproxy
        bundle.write_text(Path(certifi.where()).read_text() + ca.read_text())
        proxy = f"http://127.0.0.1:{args.proxy_port}"
        print(f"demo: mitmweb UI {url}")
        print(f"demo: streaming {args.requests} requests to https://{HOST} via {proxy}", flush=True)
        served = run_client(args.requests, proxy, ca, {"flaky", "steady"}, log)
        reached = len(flaky.requests) + len(steady.requests)
        failovers = sum(s.attempts > 1 for s in served)
        print(f"{DONE}: {len(served)} served, {failovers} after a failover, "
              f"{reached} attempts reached the fakes on 127.0.0.1", flush=True)  # fmt: skip
        if args.exit_after_client:
            return
        print(guide(url, proxy, bundle, config, log), flush=True)
        while proc.poll() is None:
            time.sleep(0.5)
        tail = "\n".join(out.read_text(errors="replace").splitlines()[-20:])
        raise DemoError(f"mitmweb exited with {proc.returncode}:\n{tail}")  # tmp goes away
    finally:
        if proc is not None:
            with signals(signal.SIG_IGN):  # a second Ctrl-C must not leave mitmweb running
                stop_group(proc)
            print(f"demo: stopped mitmweb (pid {proc.pid})", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="llmrouter-demo-"))
    try:
        with signals(raise_stop), FakeProviderPool() as pool:
            run(args, tmp, pool)
    except Stop:
        print("\ndemo: stopped", flush=True)
    except DemoError as e:
        print(f"demo: error: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

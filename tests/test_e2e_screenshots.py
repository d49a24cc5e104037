"""What people look at, in a real browser: mitmweb's flow list with the router's comment and
mark, a streamed answer in the LLM view, and the report's charts. Headless Debian chromium over
the DevTools protocol; each page must load with no console error. The screenshots are test
artifacts under pytest's tmp path (never in the repo); the path is printed.
"""

from __future__ import annotations

import os
import re
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from cdp import Page, token_url
from llmrouter.tools.fakeprovider import Behaviour, FakeProvider
from llmrouter.tools.report import main as report_main
from routerproc import ROOT, SCRIPT, TestCA, free_port, on_localhost, provider, stop_group
from test_report import _write_log

pytestmark = pytest.mark.e2e
MITMWEB = str(Path(sys.executable).with_name("mitmweb"))
# mitmweb 12.3's own index.html still links a development stylesheet, which 404s: not ours.
MITMWEB_OWN_404 = "/src/css/vendor.less"


def make_web_columns() -> list[str]:
    """The columns `make web` turns on (the Makefile's WEB_COLUMNS): what users will see."""
    m = re.search(r"^WEB_COLUMNS := (.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert m, "WEB_COLUMNS is gone from the Makefile"
    return m.group(1).split()


class Mitmweb:
    """`mitmweb -s addon/router.py` with the test's confdir; stopped by its process group."""

    def __init__(self, tmp: Path, config: dict[str, object], test_ca: TestCA) -> None:
        self.conf, self.out = tmp / "conf", tmp / "mitmweb.log"
        tmp.mkdir(parents=True)
        (tmp / "profiles.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        cmd = [MITMWEB, "-s", SCRIPT, "--listen-host", "127.0.0.1", "--listen-port", "0",
               "--web-host", "127.0.0.1", "--web-port", str(free_port()),
               "--set", "web_open_browser=false", "--set", f"confdir={self.conf}",
               "--set", f"router_config={tmp / 'profiles.yaml'}",
               "--set", f"ssl_verify_upstream_trusted_ca={test_ca.ca_pem}"]  # fmt: skip
        cmd += [a for c in make_web_columns() for a in ("--set", f"web_columns={c}")]
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        with self.out.open("wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)  # fmt: skip
        end = time.monotonic() + 30
        while (url := token_url(self.output())) is None:
            assert self.proc.poll() is None, f"mitmweb exited:\n{self.output()}"
            assert time.monotonic() < end, f"mitmweb did not start:\n{self.output()}"
            time.sleep(0.05)
        self.url = url
        port = re.search(r"proxy listening at 127\.0\.0\.1:(\d+)", self.output())
        assert port
        self.proxy = f"http://127.0.0.1:{port.group(1)}"
        self.bundle = tmp / "bundle.pem"
        self.bundle.write_text((self.conf / "mitmproxy-ca-cert.pem").read_text())

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def stop(self) -> None:
        stop_group(self.proc)


@pytest.fixture
def mitmweb(tmp_path: Path, test_ca: TestCA) -> Iterator[Callable[..., Mitmweb]]:
    started: list[Mitmweb] = []

    def start(config: dict[str, object]) -> Mitmweb:
        started.append(Mitmweb(tmp_path / f"web{len(started)}", config, test_ca))
        return started[-1]

    yield start
    for web in started:
        web.stop()


def _client(web: Mitmweb, origin: FakeProvider):  # type: ignore[no-untyped-def]
    import anthropic

    verify = ssl.create_default_context(cafile=str(web.bundle))
    http = anthropic.DefaultHttpxClient(proxy=web.proxy, verify=verify, trust_env=False)
    return anthropic.Anthropic(base_url=on_localhost(origin), api_key="client-key", max_retries=0,
                               http_client=http)  # fmt: skip


# In the page: the text of each flow row's comment cell, and of its marker.
ROWS = """[...document.querySelectorAll('.flow-table tbody tr')].map(tr => [
  (tr.querySelector('td.col-comment') || {}).innerText || '',
  (tr.querySelector('.marker') || {}).innerText || ''])"""


async def test_mitmweb_flow_list_shows_the_comment_mark_and_llm_view(
    fakes: Callable[..., FakeProvider], origin: FakeProvider, mitmweb: Callable[..., Mitmweb],
    tmp_path: Path,
) -> None:  # fmt: skip
    first = fakes("first", default=Behaviour(kind="status", status=503))
    second = fakes("second", default=Behaviour(deltas=6))
    web = mitmweb({
        "providers": {"first": provider(first), "second": provider(second)},
        "profiles": {"default": {"hosts": ["localhost"], "providers": ["first", "second"]}},
    })  # fmt: skip
    client = _client(web, origin)
    with client.messages.stream(
        model="claude-test", max_tokens=50, messages=[{"role": "user", "content": "hi there"}]
    ) as stream:
        text = "".join(stream.text_stream)
    assert text.startswith("Hello from second.")

    async with Page(tmp_path / "chromium") as page:
        await page.open(web.url)
        rows = await page.wait_for(f"(rows => rows.some(r => r[0].includes('→')) && rows)({ROWS})")
        comments = [c for c, _ in rows if "→" in c]
        assert len(comments) == 1
        assert re.fullmatch(r"first 503 \d+ms → second 200 \d+ms · default/failover", comments[0])
        assert [m for c, m in rows if "→" in c] == ["↪"]
        headers = await page.evaluate(
            "[...document.querySelectorAll('.flow-table thead th')].map(th => th.innerText)"
        )
        assert "Comment" in headers, headers
        shot = await page.screenshot(tmp_path / "mitmweb-flows.png")

        # The streamed answer, kept in the flow, in the LLM view of the Response tab.
        await page.evaluate("""[...document.querySelectorAll('.flow-table tbody tr')]
            .find(tr => tr.innerText.includes('→')).click()""")
        await page.wait_for("[...document.querySelectorAll('.nav-tabs a, .nav-tabs button')]"
                            ".some(a => a.innerText.trim() === 'Response')")  # fmt: skip
        await page.evaluate("""[...document.querySelectorAll('.nav-tabs a, .nav-tabs button')]
            .find(a => a.innerText.trim() === 'Response').click()""")
        shown = await page.wait_for(
            "(t => t.includes('anthropic answer') && t)("
            "(document.querySelector('.flow-detail') || document.body).innerText)"
        )
        assert f"\n{text}\n" in shown and "stop: end_turn" in shown, shown
        detail = await page.screenshot(tmp_path / "mitmweb-llm-view.png")
        assert not [e for e in page.errors if not e.endswith(MITMWEB_OWN_404)], page.errors
    print(f"screenshots: {shot} {detail}")


async def test_report_page_shows_its_charts(tmp_path: Path) -> None:
    log = _write_log(tmp_path)
    out = tmp_path / "report.html"
    assert report_main([str(log), "--html", str(out)]) == 0
    async with Page(tmp_path / "chromium", width=1200, height=900) as page:
        await page.open(out.as_uri())
        charts = await page.wait_for(
            "(s => s.length && s)([...document.querySelectorAll('section.chart')]"
            ".map(s => [s.id, s.querySelectorAll('svg rect, svg path, svg line').length]))"
        )
        assert [c[0] for c in charts] == [
            "chart-attempts", "chart-latency", "chart-ttft", "chart-total", "chart-cost"
        ]  # fmt: skip
        assert all(n > 0 for _, n in charts), charts  # every chart drew something
        shot = await page.screenshot(tmp_path / "report.png", full_page=True)
        assert not page.errors, page.errors
    print(f"screenshot: {shot}")

"""Headless Debian chromium driven over the DevTools protocol (aiohttp's websocket client), for
the screenshot tests: open a page, wait for a condition in it, collect console errors, and save
a screenshot. Loopback only: chromium resolves no host name and uses no proxy.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest

CHROMIUM = "/usr/bin/chromium"


def chromium() -> str:
    found = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if not found:
        pytest.fail(f"{CHROMIUM} not found: `make test` installs it (Debian package `chromium`)")
    return found


class Page:
    """One tab of a headless chromium, started for it and stopped by its process group."""

    def __init__(self, profile: Path, width: int = 1400, height: int = 900) -> None:
        self.profile, self.width, self.height = profile, width, height
        self.errors: list[str] = []  # console errors, uncaught exceptions, failed loads
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Page:
        self.profile.mkdir(parents=True, exist_ok=True)
        log = self.profile / "chromium.log"
        cmd = [
            chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-quic", "--no-proxy-server",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--user-data-dir={self.profile}", f"--window-size={self.width},{self.height}",
            "--remote-debugging-port=0", "about:blank",
        ]  # fmt: skip
        with log.open("wb") as out:  # own process group: the browser and helpers stop together
            self._proc = await asyncio.create_subprocess_exec(
                *cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        port = await self._devtools_port()
        self._http = aiohttp.ClientSession(trust_env=False)
        async with self._http.get(f"http://127.0.0.1:{port}/json/list") as resp:
            tabs = [t for t in await resp.json() if t.get("type") == "page"]
        self._ws = await self._http.ws_connect(tabs[0]["webSocketDebuggerUrl"], max_msg_size=0)
        self._reader = asyncio.create_task(self._read())
        for domain in ("Page", "Runtime", "Log"):
            await self.send(f"{domain}.enable")
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self._reader.cancel()
            await self._ws.close()
            await self._http.close()
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            await asyncio.wait_for(self._proc.wait(), 10)

    async def _devtools_port(self, limit: float = 30) -> int:
        """chromium writes its DevTools port to DevToolsActivePort in the profile once ready."""
        path = self.profile / "DevToolsActivePort"
        loop = asyncio.get_running_loop()
        end = loop.time() + limit
        while loop.time() < end:
            assert self._proc is not None
            if self._proc.returncode is not None:
                pytest.fail(f"chromium exited: {(self.profile / 'chromium.log').read_text()}")
            with contextlib.suppress(OSError, ValueError):
                return int(path.read_text().split()[0])
            await asyncio.sleep(0.05)
        pytest.fail("chromium did not open its DevTools port within 30 s")

    async def _read(self) -> None:
        async for msg in self._ws:
            data = json.loads(msg.data)
            if "id" in data:
                fut = self._pending.pop(data["id"], None)
                if fut is not None and not fut.done():
                    fut.set_result(data)
            else:
                self._event(data.get("method", ""), data.get("params", {}))

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            self.errors.append(f"console.{params['type']}: {args}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text")
            self.errors.append(f"exception: {text}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            self.errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        n = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[n] = fut
        await self._ws.send_str(json.dumps({"id": n, "method": method, "params": params}))
        reply = await asyncio.wait_for(fut, 30)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def open(self, url: str) -> None:
        await self.send("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'")

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                                 awaitPromise=True)  # fmt: skip
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, limit: float = 30) -> Any:
        """Poll until `expression` is truthy in the page (a condition, never a fixed sleep)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + limit
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if loop.time() > end:
                text = await self.evaluate("document.body ? document.body.innerText : ''")
                raise AssertionError(f"not true within {limit}s: {expression}\n{text[:2000]}")
            await asyncio.sleep(0.1)

    async def screenshot(self, path: Path, full_page: bool = False) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = await self.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
            )
            params["clip"] = {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}
            params["captureBeyondViewport"] = True
        data = await self.send("Page.captureScreenshot", **params)
        await asyncio.to_thread(path.write_bytes, base64.b64decode(data["data"]))
        return path


def token_url(output: str) -> str | None:
    """mitmweb 12 prints its UI's URL with a one-time token once both listeners are up."""
    if "proxy listening at" not in output:
        return None
    m = re.search(r"Web server listening at (\S+)", output)
    return m.group(1) if m else None

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from llmrouter.tools.fakeprovider import Behaviour, FakeProvider, FakeProviderPool
from redisproc import redis_server  # noqa: F401 - a fixture for the shared-state tests
from routerproc import RouterProc, TestCA


@pytest.fixture(scope="session")
def pool() -> Iterator[FakeProviderPool]:
    with FakeProviderPool() as p:
        yield p


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("testca"))


@pytest.fixture
def fakes(pool: FakeProviderPool) -> Iterator[Callable[..., FakeProvider]]:
    """Start fake providers for one test; all are stopped after it."""
    started: list[FakeProvider] = []

    def start(name: str, **kw: Any) -> FakeProvider:
        fake = pool.start(name, **kw)
        started.append(fake)
        return fake

    yield start
    for fake in started:
        pool.stop(fake)


@pytest.fixture
def origin(fakes: Callable[..., FakeProvider], test_ca: TestCA) -> FakeProvider:
    """The "original host" clients talk to: a TLS server on localhost. Routed requests never
    reach it; everything that passes through does."""
    return fakes("origin", ssl_context=test_ca.server_context())


@pytest.fixture
def router(tmp_path: Path, test_ca: TestCA) -> Iterator[Callable[..., RouterProc]]:
    """Start a real `mitmdump -s addon/router.py` on a config; stopped by PID after the test."""
    procs: list[RouterProc] = []

    def start(
        config: dict[str, Any] | str, *options: str, wait: bool = True, **kw: Any
    ) -> RouterProc:
        proc = RouterProc(tmp_path / f"router{len(procs)}", config, test_ca)
        procs.append(proc)
        proc.start(*options, wait=wait, **kw)
        return proc

    yield start
    for proc in procs:
        proc.stop()


@pytest.fixture
async def providers() -> AsyncIterator[tuple[FakeProvider, FakeProvider]]:
    """In-process fakes for the addon tests: `a` answers 503, `b` answers."""
    a = FakeProvider("a", default=Behaviour(kind="status", status=503))
    b = FakeProvider("b")
    await a.start()
    await b.start()
    yield a, b
    await a.stop()
    await b.stop()

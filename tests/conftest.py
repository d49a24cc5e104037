from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from llmrouter.tools.fakeprovider import FakeProvider, FakeProviderPool
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

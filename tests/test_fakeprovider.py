"""The fake provider, driven by the real anthropic/openai SDKs pointed straight at it."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import anthropic
import httpx2
import openai
import pytest
from llmrouter.tools.fakeprovider import (
    Behaviour,
    FakeProvider,
    FakeProviderPool,
    parse_faults,
)

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def pool() -> Iterator[FakeProviderPool]:
    with FakeProviderPool() as p:
        yield p


@pytest.fixture
def fake(pool: FakeProviderPool) -> Iterator[FakeProvider]:
    provider = pool.start("a")
    yield provider
    pool.stop(provider)


class Clients:
    """SDK clients pointed straight at a fake (no proxy, no retries), closed after the test."""

    def __init__(self) -> None:
        self._open: list[anthropic.Anthropic | openai.OpenAI] = []

    def claude(self, fake: FakeProvider, timeout: float = 5.0) -> anthropic.Anthropic:
        http = anthropic.DefaultHttpxClient(trust_env=False)
        client = anthropic.Anthropic(
            api_key="k", base_url=fake.url, max_retries=0, timeout=timeout, http_client=http
        )
        self._open.append(client)
        return client

    def gpt(self, fake: FakeProvider, prefix: str = "/v1", timeout: float = 5.0) -> openai.OpenAI:
        http = openai.DefaultHttpxClient(trust_env=False)
        client = openai.OpenAI(
            api_key="k",
            base_url=fake.url + prefix,
            max_retries=0,
            timeout=timeout,
            http_client=http,
        )
        self._open.append(client)
        return client

    def close(self) -> None:
        for client in self._open:
            client.close()


@pytest.fixture
def sdk() -> Iterator[Clients]:
    clients = Clients()
    yield clients
    clients.close()


MSG = [{"role": "user", "content": "hi"}]


def test_anthropic_messages(fake: FakeProvider, sdk: Clients) -> None:
    fake.set_default(Behaviour(cache_read_tokens=7, cache_write_tokens=2))
    msg = sdk.claude(fake).messages.create(model="claude-x", max_tokens=10, messages=MSG)
    assert msg.content[0].text == "Hello from a."
    assert msg.model == "claude-x"
    assert msg.stop_reason == "end_turn"
    assert msg.usage.output_tokens == 3
    assert msg.usage.cache_read_input_tokens == 7
    assert msg.usage.input_tokens == max(1, len(fake.requests[0].body) // 4)


def test_anthropic_stream(fake: FakeProvider, sdk: Clients) -> None:
    fake.set_default(Behaviour(deltas=5, output_tokens=42))
    with sdk.claude(fake).messages.stream(model="claude-x", max_tokens=10, messages=MSG) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) == 5
    assert "Hello from a." in "".join(pieces)
    assert final.usage.output_tokens == 42
    assert final.stop_reason == "end_turn"


def test_anthropic_raw_events_in_order(fake: FakeProvider, sdk: Clients) -> None:
    stream = sdk.claude(fake).messages.create(model="m", max_tokens=1, messages=MSG, stream=True)
    kinds = [event.type for event in stream]
    assert kinds == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 3,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]  # ping is swallowed by the SDK


def test_chat(fake: FakeProvider, sdk: Clients) -> None:
    client = sdk.gpt(fake)
    done = client.chat.completions.create(model="gpt-x", messages=MSG)
    assert done.choices[0].message.content == "Hello from a."
    assert done.model == "gpt-x"
    assert done.usage is not None and done.usage.completion_tokens == 3
    chunks = list(
        client.chat.completions.create(
            model="gpt-x", messages=MSG, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from a."
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == chunks[-1].usage.prompt_tokens + 3


READ = {"name": "Read", "input": {"file_path": "/tmp/notes.txt", "limit": 20}}


def test_anthropic_tool_use_then_text_once_the_result_comes(
    fake: FakeProvider, sdk: Clients
) -> None:
    fake.set_default(Behaviour(tool_use=READ, deltas=4))
    client = sdk.claude(fake)
    msg = client.messages.create(model="m", max_tokens=10, messages=MSG)
    [call] = msg.content
    assert call.type == "tool_use" and call.name == "Read" and call.input == READ["input"]
    assert msg.stop_reason == "tool_use"
    with client.messages.stream(model="m", max_tokens=10, messages=MSG) as stream:
        streamed = stream.get_final_message()
    assert streamed.content[0].type == "tool_use" and streamed.content[0].input == READ["input"]
    assert streamed.stop_reason == "tool_use" and streamed.content[0].id != call.id
    result = [
        *MSG,
        {"role": "assistant", "content": [call.model_dump()]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                      "content": "the notes"}]},
    ]  # fmt: skip
    answer = client.messages.create(model="m", max_tokens=10, messages=result)
    assert answer.content[0].text.startswith("Hello from a.") and answer.stop_reason == "end_turn"


def test_chat_tool_calls_then_text_once_the_result_comes(fake: FakeProvider, sdk: Clients) -> None:
    fake.set_default(Behaviour(tool_use=READ, deltas=3))
    client = sdk.gpt(fake)
    done = client.chat.completions.create(model="m", messages=MSG)
    [call] = done.choices[0].message.tool_calls or []
    assert done.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "Read" and json.loads(call.function.arguments) == READ["input"]
    chunks = list(client.chat.completions.create(model="m", messages=MSG, stream=True))
    deltas = [c.choices[0].delta.tool_calls for c in chunks if c.choices[0].delta.tool_calls]
    assert len(deltas) == 3 and deltas[0][0].function.name == "Read"
    args = "".join(d[0].function.arguments or "" for d in deltas)
    assert json.loads(args) == READ["input"] and chunks[-1].choices[0].finish_reason == "tool_calls"
    result = [*MSG, done.choices[0].message.model_dump(exclude_none=True),
              {"role": "tool", "tool_call_id": call.id, "content": "the notes"}]  # fmt: skip
    answer = client.chat.completions.create(model="m", messages=result)
    assert answer.choices[0].message.content == "Hello from a."


def test_chat_stream_without_usage_has_no_usage_chunk(fake: FakeProvider, sdk: Clients) -> None:
    chunks = list(sdk.gpt(fake).chat.completions.create(model="m", messages=MSG, stream=True))
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


def test_responses(fake: FakeProvider, sdk: Clients) -> None:
    client = sdk.gpt(fake)
    resp = client.responses.create(model="gpt-r", input="hi")
    assert resp.output_text == "Hello from a."
    assert resp.model == "gpt-r"
    assert resp.usage is not None and resp.usage.output_tokens == 3
    events = list(client.responses.create(model="gpt-r", input="hi", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == "Hello from a."
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == "Hello from a." and final.usage is not None
    # The SDK's accumulating helper must also be happy with the event sequence.
    with client.responses.stream(model="gpt-r", input="hi") as stream:
        for _ in stream:
            pass
        assert stream.get_final_response().output_text == "Hello from a."


def test_completions_and_embeddings(fake: FakeProvider, sdk: Clients) -> None:
    client = sdk.gpt(fake)
    done = client.completions.create(model="gpt-i", prompt="hi")
    assert done.choices[0].text == "Hello from a."
    chunks = list(client.completions.create(model="gpt-i", prompt="hi", stream=True))
    assert "".join(c.choices[0].text for c in chunks) == "Hello from a."
    emb = client.embeddings.create(model="emb", input=["x", "y"], dimensions=4)
    assert [len(d.embedding) for d in emb.data] == [4, 4]
    again = client.embeddings.create(model="emb", input="x", dimensions=4)
    assert again.data[0].embedding == emb.data[0].embedding  # deterministic


@pytest.mark.parametrize("prefix", ["/v1", "/openai/v1", "/api/v1", ""])
def test_path_prefixes(fake: FakeProvider, sdk: Clients, prefix: str) -> None:
    done = sdk.gpt(fake, prefix).chat.completions.create(model="m", messages=MSG)
    assert done.choices[0].message.content == "Hello from a."
    assert fake.requests[-1].path == f"{prefix}/chat/completions"


def test_status_errors_in_api_format(fake: FakeProvider, sdk: Clients) -> None:
    fake.push(
        Behaviour("status", status=529),
        Behaviour("status", status=429, headers={"retry-after": "2"}),
    )
    with pytest.raises(anthropic.APIStatusError) as err:
        sdk.claude(fake).messages.create(model="m", max_tokens=1, messages=MSG)
    assert err.value.status_code == 529
    assert err.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    with pytest.raises(openai.RateLimitError) as rate:
        sdk.gpt(fake).chat.completions.create(model="m", messages=MSG)
    assert rate.value.response.headers["retry-after"] == "2"
    assert rate.value.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
    assert rate.value.response.headers["x-request-id"].startswith("req_")


def test_inband_error(fake: FakeProvider, sdk: Clients) -> None:
    fake.push(Behaviour("inband_error", after_deltas=2), Behaviour("inband_error"))
    texts: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError, match="overloaded_error"),
        sdk.claude(fake).messages.stream(model="m", max_tokens=1, messages=MSG) as stream,
    ):
        texts.extend(stream.text_stream)
    assert texts == ["Hello", " from"]
    stream2 = sdk.gpt(fake).chat.completions.create(model="m", messages=MSG, stream=True)
    with pytest.raises(openai.APIError):
        list(stream2)


def test_inband_error_responses(fake: FakeProvider, sdk: Clients) -> None:
    fake.push(Behaviour("inband_error", after_deltas=1))
    events = list(sdk.gpt(fake).responses.create(model="m", input="hi", stream=True))
    assert events[-1].type == "error" and events[-1].code == "server_error"  # type: ignore[union-attr]
    assert [e.type for e in events].count("response.output_text.delta") == 1


def test_cut_ends_stream_early(fake: FakeProvider, sdk: Clients) -> None:
    fake.push(Behaviour("cut", deltas=10, after_deltas=2))
    texts: list[str] = []
    with (
        pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)),
        sdk.claude(fake).messages.stream(model="m", max_tokens=1, messages=MSG) as stream,
    ):
        texts.extend(stream.text_stream)
    assert texts == ["Hello", " from"]
    fake.push(Behaviour("cut"))  # non-stream: half a body, then the connection closes
    with pytest.raises(openai.APIConnectionError):
        sdk.gpt(fake).chat.completions.create(model="m", messages=MSG)


def test_hang_times_out(fake: FakeProvider, sdk: Clients) -> None:
    fake.push(Behaviour("hang"))
    started = time.monotonic()
    with pytest.raises(anthropic.APITimeoutError):
        sdk.claude(fake, timeout=0.2).messages.create(model="m", max_tokens=1, messages=MSG)
    assert time.monotonic() - started < 2


def test_drop_is_a_connection_error(fake: FakeProvider, sdk: Clients) -> None:
    fake.push(Behaviour("drop"))
    with pytest.raises(openai.APIConnectionError) as err:
        sdk.gpt(fake).chat.completions.create(model="m", messages=MSG)
    assert not isinstance(err.value, openai.APITimeoutError)


def test_stalls_send_lifecycle_then_nothing(fake: FakeProvider) -> None:
    fake.push(Behaviour("stall_before_token"), Behaviour("stall_after", after_deltas=1))
    body = {"model": "m", "stream": True, "messages": MSG}
    with httpx2.Client(trust_env=False, timeout=httpx2.Timeout(2, read=0.2)) as http:
        for expected in (["message_start", "content_block_start", "ping"], ["content_block_delta"]):
            seen: list[str] = []
            with (
                pytest.raises(httpx2.ReadTimeout),
                http.stream("POST", fake.url + "/v1/messages", json=body) as resp,
            ):
                assert resp.headers["content-type"] == "text/event-stream"
                for line in resp.iter_lines():
                    if line.startswith("event: "):
                        seen.append(line.removeprefix("event: "))
            assert seen[-len(expected) :] == expected


def test_script_fifo_then_default_and_recording(fake: FakeProvider, sdk: Clients) -> None:
    fake.set_default(Behaviour("status", status=500))
    fake.push(Behaviour(), Behaviour("status", status=400))
    client = sdk.gpt(fake)
    assert client.models.with_raw_response.list().http_request.url.path == "/v1/models"  # origin
    assert client.chat.completions.create(model="m", messages=MSG).choices
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="m", messages=MSG)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="m", messages=MSG)
    reqs = fake.requests
    assert [(r.method, r.path) for r in reqs] == [("GET", "/v1/models")] + [
        ("POST", "/v1/chat/completions")
    ] * 3
    assert reqs[1].json["model"] == "m" and reqs[1].headers["authorization"] == "Bearer k"
    assert reqs[0].t <= reqs[-1].t
    fake.push(Behaviour("status", status=500))
    fake.clear()
    fake.reset_requests()
    assert fake.requests == []


def test_origin_answer(fake: FakeProvider) -> None:
    with httpx2.Client(trust_env=False) as http:
        resp = http.get(fake.url + "/api/claude_code/settings?x=1")
    assert resp.json() == {"origin": "a", "method": "GET", "path": "/api/claude_code/settings?x=1"}


def test_random_faults_are_seeded(pool: FakeProviderPool) -> None:
    def outcomes(seed: int) -> list[int]:
        fake = pool.start("r", faults={"503": 0.5}, seed=seed)
        try:
            with httpx2.Client(trust_env=False) as http:
                return [
                    http.post(fake.url + "/v1/messages", json={}).status_code for _ in range(20)
                ]
        finally:
            pool.stop(fake)

    first = outcomes(1)
    assert first == outcomes(1)
    assert set(first) == {200, 503}
    assert parse_faults("503=0.2, cut=0.05") == {"503": 0.2, "cut": 0.05}
    with pytest.raises(ValueError):
        FakeProvider("x", faults={"nope": 0.1})


def test_pool_close_does_not_wait_for_hanging_requests() -> None:
    errors: list[BaseException] = []
    pool = FakeProviderPool()
    fake = pool.start("h", default=Behaviour("hang"))

    def call() -> None:
        try:
            with httpx2.Client(trust_env=False, timeout=30) as http:
                http.post(fake.url + "/v1/messages", json={})
        except BaseException as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    while not fake.requests:
        time.sleep(0.01)
    started = time.monotonic()
    pool.close()
    caller.join(5)
    assert time.monotonic() - started < 2
    assert not caller.is_alive()
    assert errors and isinstance(errors[0], httpx2.TransportError)


async def test_async_timing_and_tls(tmp_path: Path) -> None:
    ctx, cert = _self_signed(tmp_path)
    fake = FakeProvider("t", default=Behaviour(ttft=0.2, interval=0.05, deltas=4), ssl_context=ctx)
    await fake.start()
    assert fake.url.startswith("https://127.0.0.1:")
    client_ctx = ssl.create_default_context(cafile=cert)
    arrivals: list[float] = []
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{fake.url}/v1/chat/completions", json={"stream": True}, ssl=client_ctx
            ) as r,
        ):
            assert r.headers["cache-control"] == "no-cache"
            start = time.monotonic()
            async for line in r.content:
                if line.startswith(b"data: {"):
                    arrivals.append(time.monotonic() - start)
    finally:
        await fake.stop()
    # role chunk at once, first token after ttft, then one every interval (not buffered)
    assert arrivals[0] < 0.1
    assert 0.18 < arrivals[1] < 0.4
    assert arrivals[4] - arrivals[1] >= 0.14


def _self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx, str(cert_file)


def test_cli_prints_line_and_exits_on_sigterm() -> None:
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmrouter.tools.fakeprovider", "--name", "cli", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("fakeprovider cli listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        with httpx2.Client(trust_env=False) as http:
            body = http.post(url + "/v1/messages", json={"model": "m"}).json()
        assert body["content"][0]["text"] == "Hello from cli."
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert proc.stdout.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_recorded_json_is_parsed(fake: FakeProvider) -> None:
    with httpx2.Client(trust_env=False) as http:
        http.post(fake.url + "/v1/messages", content=b"not json")
        http.post(fake.url + "/v1/messages", content=json.dumps({"model": "q"}))
    first, second = fake.requests
    assert first.json is None and first.body == b"not json"
    assert second.json == {"model": "q"}


def test_client_leaving_mid_stream_is_quiet(
    fake: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    fake.set_default(Behaviour(deltas=5000))
    body = {"model": "m", "stream": True}
    with httpx2.Client(trust_env=False) as http:
        for _ in range(3):
            with http.stream("POST", fake.url + "/v1/chat/completions", json=body) as resp:
                next(resp.iter_bytes())
    fake.set_default(Behaviour())
    with httpx2.Client(trust_env=False) as http:  # still serving normally afterwards
        assert http.post(fake.url + "/v1/messages", json={}).status_code == 200
    assert not [r for r in caplog.records if r.levelname == "ERROR"]

"""The transports: one attempt each, against real loopback servers, hostile ones too."""

from __future__ import annotations

import os
import resource
import socket
import time
from collections.abc import Iterator
from contextlib import nullcontext
from typing import Callable

import pytest
import requests
from urllib3.exceptions import InsecureRequestWarning

from gainsight_segment._wire import EVENT_PATH, request_headers
from gainsight_segment.testing import DEMO_ACCESS_KEY
from gainsight_segment.transport import (
    DefaultTransport,
    Request,
    RequestsTransport,
    Response,
    Transport,
    TransportError,
)

from .servers import (
    CERTIFICATE,
    ScriptedServer,
    Step,
    answer,
    elapsed,
    gzip_bomb,
    tls_context,
    trickle,
)

BODY = b'{"type":"track","event":"Clicked"}'
# Deadline tests allow this much past the deadline for thread scheduling on a busy machine.
MARGIN = 0.5

TRANSPORTS: dict[str, Callable[[], Transport]] = {
    "default": DefaultTransport,
    "session": lambda: RequestsTransport(requests.Session()),
}


@pytest.fixture(params=sorted(TRANSPORTS))
def transport(request: pytest.FixtureRequest) -> Iterator[Transport]:
    made = TRANSPORTS[request.param]()
    yield made
    made.close()


def post(transport: Transport, endpoint: str, timeout: float = 5.0) -> Response:
    request = Request("POST", endpoint + EVENT_PATH, request_headers(DEMO_ACCESS_KEY), BODY)
    return transport.send(request, timeout)


def always(*steps: Step) -> Callable[[bytes], list[Step]]:
    return lambda request: list(steps)


def kb_resident() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def test_posts_the_body_with_the_wire_headers(transport: Transport) -> None:
    with ScriptedServer(always(answer(200, b'{"ok":true}'))) as server:
        response = post(transport, server.endpoint)
    (request,) = server.requests
    head, _, body = request.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /clickstream/segmentio/event HTTP/1.1\r\n")
    lines = [line.lower() for line in head.split(b"\r\n")]
    for header in (
        f"accesskey: {DEMO_ACCESS_KEY}",
        "content-type: application/json",
        "user-agent: gainsight-segment-python/",
    ):
        assert any(line.startswith(header.lower().encode()) for line in lines), header
    assert body == BODY
    assert (response.status, response.body) == (200, b'{"ok":true}')


@pytest.mark.parametrize("status", [201, 400, 429, 503])
def test_any_status_is_returned_not_raised(transport: Transport, status: int) -> None:
    with ScriptedServer(always(answer(status, b"no", {"Retry-After": "7"}))) as server:
        response = post(transport, server.endpoint)
    assert (response.status, response.body, response.header("retry-after")) == (status, b"no", "7")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_returned_not_followed(transport: Transport, status: int) -> None:
    # The access key must never travel to another host.
    location = {"Location": "http://127.0.0.1:9/elsewhere"}
    with ScriptedServer(always(answer(status, b"", location))) as server:
        response = post(transport, server.endpoint)
    assert response.status == status
    assert len(server.requests) == 1


def test_a_huge_body_is_read_no_further_than_4_kb(transport: Transport) -> None:
    huge = b"x" * (50 * 1024 * 1024)
    with ScriptedServer(always(answer(500, huge))) as server:
        started = time.monotonic()
        response = post(transport, server.endpoint)
        took = elapsed(started)
    assert response.body == b"x" * 4096
    assert took < 2.0  # 50 MB were not read


def test_a_compressed_body_is_never_inflated_past_4_kb(transport: Transport) -> None:
    # 200 MB of zeros compress to about 200 KB: inflating them whole would cost 200 MB.
    bomb = gzip_bomb()
    with ScriptedServer(always(answer(500, bomb, {"Content-Encoding": "gzip"}))) as server:
        before = kb_resident()
        response = post(transport, server.endpoint)
        grown_mb = (kb_resident() - before) / 1024
    assert response.body == b"\0" * 4096
    assert grown_mb < 50


def test_a_connection_cut_short_of_its_body_is_not_reused() -> None:
    huge = b"x" * (1024 * 1024)
    with ScriptedServer(always(answer(500, huge))) as server:
        transport = DefaultTransport()
        assert post(transport, server.endpoint).status == 500
        assert post(transport, server.endpoint).status == 500
        transport.close()
    assert server.connections == 2


def test_connections_are_kept_alive_between_attempts() -> None:
    with ScriptedServer(always(answer(200))) as server:
        transport = DefaultTransport()
        statuses = [post(transport, server.endpoint).status for _ in range(3)]
        transport.close()
    assert (statuses, server.connections) == ([200] * 3, 1)


def refused_endpoint() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    ("server_does", "kind"),
    [
        pytest.param("refuse", "network", id="refused"),
        pytest.param("drop", "network", id="closed-unanswered"),
        pytest.param("stall", "timeout", id="no-answer-in-time"),
        pytest.param("garble", "invalid_response", id="not-http"),
    ],
)
def test_failures_below_http_raise_transport_error_of_their_kind(
    transport: Transport, server_does: str, kind: str
) -> None:
    scripts: dict[str, list[Step]] = {
        "drop": [b""],
        "stall": [3.0],
        "garble": [b"SMTP ready\r\n\r\n", b""],
    }
    if server_does == "refuse":
        with pytest.raises(TransportError) as raised:
            post(transport, refused_endpoint(), timeout=1.0)
    else:
        with (
            ScriptedServer(always(*scripts[server_does])) as server,
            pytest.raises(TransportError) as raised,
        ):
            post(transport, server.endpoint, timeout=0.5)
    assert raised.value.kind == kind


def test_a_trickling_answer_ends_at_the_attempts_timeout() -> None:
    # One byte every 0.1 s keeps every socket read alive: only a deadline on the whole
    # attempt ends it.
    with ScriptedServer(lambda request: trickle(answer(200, b"x" * 200), 0.1)) as server:
        transport = DefaultTransport()
        started = time.monotonic()
        with pytest.raises(TransportError) as raised:
            post(transport, server.endpoint, timeout=1.0)
        took = elapsed(started)
        transport.close()
    assert raised.value.kind == "timeout"
    assert took < 1.0 + MARGIN


def test_an_untrusted_certificate_is_a_tls_error() -> None:
    with (
        ScriptedServer(always(answer(200)), tls=tls_context()) as server,
        pytest.raises(TransportError) as raised,
    ):
        post(DefaultTransport(), server.endpoint)
    assert raised.value.kind == "tls"


@pytest.mark.parametrize("verify", [CERTIFICATE, False], ids=["ca-bundle", "no-verify"])
def test_verify_takes_a_ca_bundle_or_false(verify: str | bool) -> None:
    with ScriptedServer(always(answer(200)), tls=tls_context()) as server:
        transport = DefaultTransport(verify=verify)
        warned = pytest.warns(InsecureRequestWarning) if verify is False else nullcontext()
        with warned:
            assert post(transport, server.endpoint).status == 200
        transport.close()


def test_environment_proxies_are_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    with ScriptedServer(always(answer(200))) as server:
        assert post(DefaultTransport(), server.endpoint).status == 200


def test_a_configured_proxy_is_used() -> None:
    # Speaking plain HTTP to a proxy, a client sends it the whole URL.
    with ScriptedServer(always(answer(200))) as proxy:
        transport = DefaultTransport(proxies={"http": proxy.endpoint})
        response = post(transport, "http://127.0.0.1:9")
        transport.close()
    assert response.status == 200
    assert proxy.requests[0].startswith(b"POST http://127.0.0.1:9/clickstream/segmentio/event ")


def test_a_forked_child_never_shares_the_parents_connection() -> None:
    with ScriptedServer(always(answer(200))) as server:
        transport = DefaultTransport()
        assert post(transport, server.endpoint).status == 200
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit status
            status = 1
            try:
                status = 0 if post(transport, server.endpoint).status == 200 else 1
            finally:
                os._exit(status)
        _, status = os.waitpid(pid, 0)
        connections = server.connections
        transport.close()
    assert os.waitstatus_to_exitcode(status) == 0
    assert connections == 2  # the child opened its own


def test_request_repr_masks_the_access_key() -> None:
    request = Request("POST", "https://x", request_headers(DEMO_ACCESS_KEY), BODY)
    shown = repr(request)
    assert DEMO_ACCESS_KEY not in shown
    assert "****" + DEMO_ACCESS_KEY[-4:] in shown
    assert f"<{len(BODY)} bytes>" in shown


def test_response_keeps_at_most_4_kb_of_body() -> None:
    assert len(Response(500, body=b"y" * 10_000).body) == 4096


@pytest.mark.parametrize("name", ["Retry-After", "retry-after", "RETRY-AFTER"])
def test_response_header_lookup_ignores_case(name: str) -> None:
    assert Response(429, {"Retry-After": "3"}).header(name) == "3"


def test_response_header_is_none_when_absent() -> None:
    assert Response(200).header("Retry-After") is None

"""Tests for the loopback collector: the endpoint contract, recording, faults and lifecycle."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from gainsight_segment.testing import DEMO_ACCESS_KEY, Faults, LocalCollector

PATH = "/clickstream/segmentio/event"
HEADERS = {"accessKey": DEMO_ACCESS_KEY, "Content-Type": "application/json"}
OTHER_KEY = "35a84f9e-7084-47a1-b8a5-593444e9e862"
TRACK = {"type": "track", "userId": "123", "event": "Account Created", "properties": {}}


@pytest.fixture
def collector() -> Iterator[LocalCollector]:
    """A started collector expecting DEMO_ACCESS_KEY, which HEADERS carries."""
    with LocalCollector() as running:
        yield running


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as opened:
        yield opened


def post(
    session: requests.Session,
    collector: LocalCollector,
    message: Any = TRACK,
    **kwargs: Any,
) -> requests.Response:
    body = kwargs.pop("data", None)
    if body is None:
        body = json.dumps(message).encode()
    kwargs.setdefault("headers", HEADERS)
    kwargs.setdefault("timeout", 5)
    return session.post(collector.endpoint + PATH, data=body, **kwargs)


# --- the contract -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["identify", "track", "group"])
def test_accepts_each_message_type_and_answers_ok(
    collector: LocalCollector, session: requests.Session, kind: str
) -> None:
    message = {"type": kind, "userId": "123"}

    response = post(session, collector, message)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert collector.messages == [message]


@pytest.mark.parametrize(
    ("headers", "suffix"),
    [
        ({**HEADERS, "Content-Type": "application/json; charset=utf-8"}, ""),
        ({**HEADERS, "Content-Type": "Application/JSON"}, ""),
        ({"accesskey": DEMO_ACCESS_KEY, "content-type": "application/json"}, ""),
        (HEADERS, "?source=test"),
    ],
    ids=["charset-parameter", "media-type-case", "header-name-case", "query-string"],
)
def test_tolerates_harmless_variations(
    collector: LocalCollector, session: requests.Session, headers: dict[str, str], suffix: str
) -> None:
    response = session.post(
        collector.endpoint + PATH + suffix, data=json.dumps(TRACK), headers=headers, timeout=5
    )

    assert response.status_code == 200
    assert collector.messages == [TRACK]


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status"),
    [
        ("POST", "/clickstream/segmentio", HEADERS, json.dumps(TRACK), 404),
        ("POST", PATH + "/", HEADERS, json.dumps(TRACK), 404),
        ("GET", "/", {}, "", 404),
        ("GET", PATH, HEADERS, "", 405),
        ("PUT", PATH, HEADERS, json.dumps(TRACK), 405),
        ("DELETE", PATH, HEADERS, "", 405),
        ("POST", PATH, {"Content-Type": "application/json"}, json.dumps(TRACK), 401),
        ("POST", PATH, {**HEADERS, "accessKey": OTHER_KEY}, json.dumps(TRACK), 401),
        ("POST", PATH, {**HEADERS, "accessKey": ""}, json.dumps(TRACK), 401),
        ("POST", PATH, {"accessKey": DEMO_ACCESS_KEY}, json.dumps(TRACK), 415),
        ("POST", PATH, {**HEADERS, "Content-Type": "text/plain"}, json.dumps(TRACK), 415),
        ("POST", PATH, {**HEADERS, "Content-Type": "application/jsonx"}, json.dumps(TRACK), 415),
        ("POST", PATH, HEADERS, "", 400),
        ("POST", PATH, HEADERS, "{not json", 400),
        ("POST", PATH, HEADERS, '{"type": "track", "properties": {"price": NaN}}', 400),
        ("POST", PATH, HEADERS, '{"type": "track", "properties": {"price": Infinity}}', 400),
        ("POST", PATH, HEADERS, '{"type": "track", "properties": {"price": -Infinity}}', 400),
        ("POST", PATH, HEADERS, json.dumps([TRACK]), 400),
        ("POST", PATH, HEADERS, '"track"', 400),
        ("POST", PATH, HEADERS, json.dumps({"userId": "123"}), 400),
        ("POST", PATH, HEADERS, json.dumps({**TRACK, "type": "page"}), 400),
        ("POST", PATH, HEADERS, json.dumps({**TRACK, "type": ["track"]}), 400),
        ("POST", PATH, HEADERS, json.dumps(TRACK) + json.dumps(TRACK), 400),
    ],
    ids=[
        "path-prefix",
        "path-trailing-slash",
        "root",
        "get",
        "put",
        "delete",
        "missing-key",
        "wrong-key",
        "empty-key",
        "missing-content-type",
        "text-content-type",
        "lookalike-content-type",
        "empty-body",
        "malformed-json",
        "nan",
        "infinity",
        "negative-infinity",
        "array",
        "string",
        "missing-type",
        "unknown-type",
        "non-string-type",
        "two-objects",
    ],
)
def test_rejects_requests_that_break_the_contract(
    collector: LocalCollector,
    session: requests.Session,
    method: str,
    path: str,
    headers: dict[str, str],
    body: str,
    status: int,
) -> None:
    response = session.request(
        method, collector.endpoint + path, data=body.encode(), headers=headers, timeout=5
    )

    assert response.status_code == status
    assert response.json()["status"] == "error"
    assert collector.messages == []


def test_rejects_a_body_that_is_not_utf8(
    collector: LocalCollector, session: requests.Session
) -> None:
    response = post(session, collector, data=b'{"type": "track", "event": "\xff"}')

    assert response.status_code == 400
    assert collector.messages == []


def test_wrong_method_answer_allows_post(
    collector: LocalCollector, session: requests.Session
) -> None:
    response = session.get(collector.endpoint + PATH, headers=HEADERS, timeout=5)

    assert response.headers["Allow"] == "POST"


def send_headers_only(
    collector: LocalCollector, headers: dict[str, str]
) -> http.client.HTTPResponse:
    """Send a POST head without its body and return the answer, body read."""
    connection = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=5)
    try:
        connection.putrequest("POST", PATH, skip_accept_encoding=True)
        for name, value in {**HEADERS, **headers}.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        response.read()
        return response
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Transfer-Encoding": "chunked"}, 411),
        ({"Content-Length": "-1"}, 400),
        ({"Content-Length": "12abc"}, 400),
        ({"Content-Length": str(2 << 20)}, 413),
    ],
    ids=["chunked", "negative-length", "malformed-length", "oversized"],
)
def test_refuses_unframeable_bodies_and_closes_the_connection(
    collector: LocalCollector, headers: dict[str, str], status: int
) -> None:
    response = send_headers_only(collector, headers)

    assert response.status == status
    assert response.will_close
    assert collector.requests[0].status == status


# --- recording --------------------------------------------------------------------------------


def test_messages_are_recorded_in_arrival_order(
    collector: LocalCollector, session: requests.Session
) -> None:
    sent = [{**TRACK, "event": f"Event {number}"} for number in range(5)]

    for message in sent:
        post(session, collector, message)

    assert collector.messages == sent


def test_records_every_request_with_its_answer(
    collector: LocalCollector, session: requests.Session
) -> None:
    post(session, collector, headers={**HEADERS, "accessKey": "wrong"})
    post(session, collector, headers={**HEADERS, "X-Attempt": "2"})

    first, second = collector.requests
    assert (first.method, first.path, first.status) == ("POST", PATH, 401)
    assert first.headers["accessKey"] == "wrong"
    assert second.status == 200
    assert second.headers["X-Attempt"] == "2"
    assert json.loads(second.body) == TRACK


def test_messages_and_requests_are_copies(
    collector: LocalCollector, session: requests.Session
) -> None:
    post(session, collector)

    collector.messages.clear()
    collector.requests.clear()

    assert len(collector.messages) == 1
    assert len(collector.requests) == 1


def test_clear_forgets_messages_and_requests(
    collector: LocalCollector, session: requests.Session
) -> None:
    post(session, collector)

    collector.clear()

    assert collector.messages == []
    assert collector.requests == []


def test_wait_for_returns_true_once_enough_messages_arrived(
    collector: LocalCollector, session: requests.Session
) -> None:
    sender = threading.Thread(target=lambda: [post(session, collector) for _ in range(3)])
    sender.start()
    try:
        assert collector.wait_for(3, timeout=5)
    finally:
        sender.join(5)
    assert len(collector.messages) == 3


def test_wait_for_returns_false_after_its_deadline(collector: LocalCollector) -> None:
    started = time.monotonic()

    assert not collector.wait_for(1, timeout=0.05)
    assert time.monotonic() - started >= 0.05


def test_on_message_sees_only_accepted_messages(
    session: requests.Session,
) -> None:
    seen: list[dict[str, Any]] = []
    with LocalCollector(on_message=seen.append) as collector:
        post(session, collector)
        post(session, collector, {"type": "page"})

    assert seen == [TRACK]


def test_on_message_errors_are_logged_and_the_message_still_accepted(
    session: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(message: dict[str, Any]) -> None:
        raise RuntimeError("callback bug")

    with LocalCollector(on_message=explode) as collector:
        response = post(session, collector)

    assert response.status_code == 200
    assert collector.messages == [TRACK]
    assert any(
        record.name == "gainsight_segment" and record.levelno == logging.ERROR
        for record in caplog.records
    )


# --- faults -----------------------------------------------------------------------------------


def test_scripted_statuses_are_answered_in_order_then_normal_service(
    collector: LocalCollector, session: requests.Session
) -> None:
    collector.faults = Faults(statuses=(503, 429, 500))

    statuses = [post(session, collector).status_code for _ in range(4)]

    assert statuses == [503, 429, 500, 200]
    assert collector.messages == [TRACK]
    assert [request.status for request in collector.requests] == statuses


def test_a_scripted_success_status_accepts_the_message(
    collector: LocalCollector, session: requests.Session
) -> None:
    collector.faults = Faults(statuses=(202,))

    response = post(session, collector)

    assert response.status_code == 202
    assert collector.messages == [TRACK]


def test_faults_do_not_apply_to_requests_that_break_the_contract(
    collector: LocalCollector, session: requests.Session
) -> None:
    collector.faults = Faults(statuses=(503,))

    rejected = post(session, collector, headers={**HEADERS, "accessKey": "wrong"})
    scripted = post(session, collector)

    assert (rejected.status_code, scripted.status_code) == (401, 503)


@pytest.mark.parametrize("failure_statuses", [(500,), (502, 504)])
def test_failure_rate_one_fails_every_request_with_a_listed_status(
    collector: LocalCollector, session: requests.Session, failure_statuses: tuple[int, ...]
) -> None:
    collector.faults = Faults(failure_rate=1.0, failure_statuses=failure_statuses)

    statuses = {post(session, collector).status_code for _ in range(10)}

    assert statuses <= set(failure_statuses)
    assert collector.messages == []


def test_a_seed_makes_random_faults_reproducible(session: requests.Session) -> None:
    faults = Faults(failure_rate=0.5, failure_statuses=(500, 503), seed=7)
    runs = []
    for _ in range(2):
        with LocalCollector(faults=faults) as collector:
            runs.append([post(session, collector).status_code for _ in range(20)])

    assert runs[0] == runs[1]
    assert len(set(runs[0])) > 1


@pytest.mark.parametrize(
    ("retry_after", "status", "header"),
    [
        (0.5, 503, "0.5"),
        (2.0, 429, "2"),
        (0, 503, "0"),
        (1.25, 500, None),
        (None, 503, None),
    ],
)
def test_retry_after_is_sent_on_429_and_503_faults_only(
    collector: LocalCollector,
    session: requests.Session,
    retry_after: float | None,
    status: int,
    header: str | None,
) -> None:
    collector.faults = Faults(statuses=(status,), retry_after=retry_after)

    response = post(session, collector)

    assert response.status_code == status
    assert response.headers.get("Retry-After") == header


def test_retry_after_is_not_sent_on_success(
    collector: LocalCollector, session: requests.Session
) -> None:
    collector.faults = Faults(retry_after=1)

    assert "Retry-After" not in post(session, collector).headers


def test_latency_delays_every_answer(collector: LocalCollector, session: requests.Session) -> None:
    collector.faults = Faults(latency=0.2)
    started = time.monotonic()

    response = post(session, collector)

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.2


def test_slow_answers_outlast_a_short_client_timeout(
    collector: LocalCollector, session: requests.Session
) -> None:
    collector.faults = Faults(slow_rate=1.0, slow_latency=2.0)

    with pytest.raises(requests.ReadTimeout):
        post(session, collector, timeout=(5, 0.1))


def test_drop_closes_the_connection_without_an_answer(collector: LocalCollector) -> None:
    collector.faults = Faults(drop_rate=1.0)
    connection = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=5)
    try:
        connection.request("POST", PATH, body=json.dumps(TRACK), headers=HEADERS)
        with pytest.raises(http.client.RemoteDisconnected):
            connection.getresponse()
    finally:
        connection.close()

    assert collector.messages == []
    assert [request.status for request in collector.requests] == [None]


def test_stall_holds_requests_until_release(
    collector: LocalCollector, session: requests.Session
) -> None:
    collector.faults = Faults(stall=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(post, session, collector)
        with pytest.raises(concurrent.futures.TimeoutError):
            pending.result(timeout=0.3)
        assert collector.messages == []

        collector.release()

        assert pending.result(timeout=5).status_code == 200
    assert collector.messages == [TRACK]


def test_stop_answers_stalled_requests(session: requests.Session) -> None:
    collector = LocalCollector(faults=Faults(stall=True))
    collector.start()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(post, session, collector)
        with pytest.raises(concurrent.futures.TimeoutError):
            pending.result(timeout=0.3)

        collector.stop()

        assert pending.result(timeout=5).status_code == 200


def test_reassigning_faults_ends_an_outage(
    collector: LocalCollector, session: requests.Session
) -> None:
    collector.faults = Faults(failure_rate=1.0, failure_statuses=(503,))
    during = post(session, collector).status_code

    collector.faults = Faults()

    assert (during, post(session, collector).status_code) == (503, 200)


@pytest.mark.parametrize(
    "knobs",
    [
        {"failure_rate": -0.1},
        {"failure_rate": 1.5},
        {"failure_rate": float("nan")},
        {"slow_rate": 2},
        {"drop_rate": -1},
        {"latency": -0.001},
        {"latency": float("inf")},
        {"slow_latency": -1},
        {"retry_after": -1},
        {"statuses": (99,)},
        {"statuses": (100,)},
        {"statuses": (200, 600)},
        {"failure_statuses": ()},
        {"failure_statuses": (700,)},
    ],
    ids=str,
)
def test_faults_refuse_out_of_range_knobs(knobs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each knob has its own message
        Faults(**knobs)


def test_faults_accept_any_iterable_of_statuses() -> None:
    assert Faults(statuses=[503, 200]).statuses == (503, 200)


# --- HTTP and lifecycle -----------------------------------------------------------------------


def test_keeps_one_connection_alive_across_requests(collector: LocalCollector) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=5)
    try:
        sockets = []
        statuses = []
        for key in [DEMO_ACCESS_KEY, "wrong", DEMO_ACCESS_KEY]:
            connection.request(
                "POST", PATH, body=json.dumps(TRACK), headers={**HEADERS, "accessKey": key}
            )
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
            assert not response.will_close
            assert response.getheader("Content-Length") is not None
            sockets.append(connection.sock)
    finally:
        connection.close()

    assert statuses == [200, 401, 200]
    assert sockets[0] is sockets[1] is sockets[2]


def test_serves_concurrent_connections(collector: LocalCollector) -> None:
    def send(count: int) -> list[int]:
        with requests.Session() as own:
            return [post(own, collector).status_code for _ in range(count)]

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(send, [25] * 8))

    assert all(status == 200 for statuses in results for status in statuses)
    assert len(collector.messages) == 200


def test_abrupt_disconnects_print_nothing(
    collector: LocalCollector,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="gainsight_segment")
    connection = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=5)
    # A first exchange guarantees the server is serving the connection when it is reset.
    connection.request("POST", PATH, body=json.dumps(TRACK), headers=HEADERS)
    connection.getresponse().read()
    assert connection.sock is not None
    # Linger 0 turns close() into a reset, as a crashed client would leave it.
    connection.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()

    collector.stop()

    assert capfd.readouterr().err == ""
    assert any("ended" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "", "::"])
def test_refuses_to_bind_non_loopback_hosts(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        LocalCollector(host=host)


@pytest.mark.parametrize("port", [-1, 65536])
def test_refuses_out_of_range_ports(port: int) -> None:
    with pytest.raises(ValueError, match="port"):
        LocalCollector(port=port)


def test_localhost_binds_the_ipv4_loopback(session: requests.Session) -> None:
    with LocalCollector(host="localhost") as collector:
        assert collector.endpoint == f"http://127.0.0.1:{collector.port}"
        assert post(session, collector).status_code == 200


def test_binds_the_ipv6_loopback(session: requests.Session) -> None:
    try:
        collector = LocalCollector(host="::1")
    except OSError:
        pytest.skip("IPv6 loopback unavailable")
    with collector:
        assert collector.endpoint == f"http://[::1]:{collector.port}"
        assert post(session, collector).status_code == 200


def test_endpoint_is_known_before_start() -> None:
    collector = LocalCollector()
    try:
        assert collector.endpoint == f"http://127.0.0.1:{collector.port}"
        assert collector.port > 0
    finally:
        collector.stop()


def test_accepts_a_custom_access_key(session: requests.Session) -> None:
    key = OTHER_KEY
    with LocalCollector(key) as collector:
        accepted = post(session, collector, headers={**HEADERS, "accessKey": key})
        refused = post(session, collector)

    assert (accepted.status_code, refused.status_code) == (200, 401)


def test_repr_never_shows_the_access_key() -> None:
    key = OTHER_KEY
    with LocalCollector(key) as collector:
        assert key not in repr(collector)
        assert collector.endpoint in repr(collector)


@pytest.mark.parametrize(
    ("header", "key", "shown"),
    [
        pytest.param("accessKey", OTHER_KEY, "****e862", id="the-accepted-key"),
        pytest.param("AccessKey", OTHER_KEY, "****e862", id="any-spelling-of-the-name"),
        pytest.param("accessKey", "not-my-real-key", "****", id="a-short-wrong-key"),
    ],
)
def test_a_received_requests_repr_masks_the_access_key(
    session: requests.Session, header: str, key: str, shown: str
) -> None:
    with LocalCollector(OTHER_KEY) as collector:
        post(session, collector, headers={"Content-Type": "application/json", header: key})
        [request] = collector.requests
    assert key not in repr(request)
    assert f"'{header}': '{shown}'" in repr(request)


def test_a_received_request_keeps_the_access_key_it_received(session: requests.Session) -> None:
    with LocalCollector(OTHER_KEY) as collector:
        post(session, collector, headers={**HEADERS, "accessKey": OTHER_KEY})
        [request] = collector.requests
    assert request.headers["accessKey"] == OTHER_KEY


def test_stop_is_idempotent_and_closes_the_port(session: requests.Session) -> None:
    collector = LocalCollector()
    collector.start()

    collector.stop()
    collector.stop()

    with pytest.raises(requests.ConnectionError):
        post(session, collector)


def test_stop_closes_idle_keep_alive_connections(collector: LocalCollector) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=5)
    try:
        connection.request("POST", PATH, body=json.dumps(TRACK), headers=HEADERS)
        connection.getresponse().read()
        assert connection.sock is not None

        collector.stop()

        assert connection.sock.recv(1) == b""
    finally:
        connection.close()


def test_a_stopped_collector_cannot_restart() -> None:
    collector = LocalCollector()
    collector.stop()

    with pytest.raises(RuntimeError, match="restarted"):
        collector.start()


def test_start_while_serving_does_nothing(
    collector: LocalCollector, session: requests.Session
) -> None:
    collector.start()

    name = f"gainsight-segment-collector:{collector.port}"
    assert [thread.name for thread in threading.enumerate()].count(name) == 1
    assert post(session, collector).status_code == 200


def test_repr_says_whether_it_is_serving() -> None:
    collector = LocalCollector()
    states = [repr(collector)]
    collector.start()
    states.append(repr(collector))
    collector.stop()
    states.append(repr(collector))

    prefix = f"<LocalCollector endpoint={collector.endpoint!r}"
    assert states == [f"{prefix} {state}>" for state in ("not started", "running", "stopped")]


def test_faults_reads_back_what_was_assigned(collector: LocalCollector) -> None:
    default = collector.faults
    faults = Faults(statuses=(503,))

    collector.faults = faults

    assert (default, collector.faults) == (Faults(), faults)


def test_answers_expect_100_continue_before_the_body_is_sent(collector: LocalCollector) -> None:
    body = json.dumps(TRACK).encode()
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\naccessKey: {DEMO_ACCESS_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Expect: 100-continue\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", collector.port), timeout=5) as sock:
        sock.sendall(head.encode())
        interim = sock.recv(1024)
        sock.sendall(body)
        final = sock.makefile("rb").readline()

    assert interim.startswith(b"HTTP/1.1 100 Continue\r\n")
    assert final.startswith(b"HTTP/1.1 200 ")
    assert collector.messages == [TRACK]


def test_a_head_answer_has_no_body_so_the_connection_stays_usable(
    collector: LocalCollector,
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=5)
    try:
        connection.request("HEAD", PATH, headers=HEADERS)
        head = connection.getresponse()
        head.read()
        connection.request("POST", PATH, body=json.dumps(TRACK), headers=HEADERS)
        after = connection.getresponse()
        after.read()
    finally:
        connection.close()

    assert (head.status, after.status) == (405, 200)


def test_a_failed_accept_leaves_the_collector_serving(
    collector: LocalCollector, session: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = collector._server
    real = server.get_request
    attempts: list[str] = []

    def gone_before_accept() -> tuple[socket.socket, Any]:
        attempts.append("accept")
        if len(attempts) == 1:
            # The client's connection is taken and dropped: it reset before accept().
            real()[0].close()
            raise ConnectionAbortedError("software caused connection abort")
        return real()

    monkeypatch.setattr(server, "get_request", gone_before_accept)
    with pytest.raises(requests.ConnectionError):
        post(session, collector)

    assert post(session, collector).status_code == 200


def test_a_connection_that_cannot_be_served_is_logged_and_closed(
    collector: LocalCollector,
    session: requests.Session,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = collector._server
    real = server.process_request
    calls: list[object] = []

    def no_thread_for_the_first(request: socket.socket, address: Any) -> None:
        calls.append(address)
        if len(calls) == 1:
            raise RuntimeError("can't start new thread")
        real(request, address)

    monkeypatch.setattr(server, "process_request", no_thread_for_the_first)
    with pytest.raises(requests.ConnectionError):
        post(session, collector)
    recovered = post(session, collector).status_code

    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage().startswith("collector: error serving")
    assert record.exc_info is not None
    assert recovered == 200


def test_stop_may_be_called_from_on_message(session: requests.Session) -> None:
    stopped = threading.Event()

    def stop_on_first_message(message: dict[str, Any]) -> None:
        own.stop(timeout=5)
        stopped.set()

    own = LocalCollector(on_message=stop_on_first_message)
    own.start()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(post, session, own)
        assert stopped.wait(timeout=10)

    assert repr(own).endswith(" stopped>")
    with pytest.raises(requests.ConnectionError):
        post(session, own)

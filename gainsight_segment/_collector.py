"""A loopback HTTP server that speaks the Gainsight event endpoint contract.

`LocalCollector` accepts exactly what Gainsight's ``/clickstream/segmentio/event`` endpoint
accepts, records what it receives, and can misbehave on demand (`Faults`) so that retries,
timeouts and outages can be exercised against a real socket. The demo, the test suite, users' own
tests and the benchmarks all use it.

Request handling, in order:

1. Framing: the body must come with a ``Content-Length`` (411 for ``Transfer-Encoding``, 400 for
   a malformed length, 413 over 1 MiB; the connection is closed after each of these).
2. The contract (:func:`_check_request`): path 404, method 405, ``accessKey`` 401,
   ``Content-Type`` 415, body 400. Breaking the contract is a client bug, so such requests are
   answered at once and no fault applies to them.
3. Faults, for requests that honour the contract: stall, then delay, then drop or status.
4. Recording: only requests answered with a 2xx become messages. Every request that got this far,
   including rejected and dropped ones, is kept in `LocalCollector.requests`.
"""

from __future__ import annotations

import contextlib
import http.server
import ipaddress
import json
import logging
import math
import random
import selectors
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, NoReturn

import attrs

__all__ = ["DEMO_ACCESS_KEY", "Faults", "LocalCollector", "Request"]

DEMO_ACCESS_KEY = "00000000-0000-4000-8000-000000000000"
"""A well-formed access key for demos and tests; the collector expects it by default."""

_EVENT_PATH = "/clickstream/segmentio/event"
_MESSAGE_TYPES = ("identify", "track", "group")
# Far above the client's 32 KB message limit, so the collector never rejects what the client
# considers valid, yet small enough that a runaway test cannot exhaust memory.
_MAX_BODY_BYTES = 1 << 20
# How long the accept loop may block in accept() after a spurious readiness report, which
# bounds how long stop() can wait for it.
_ACCEPT_TIMEOUT = 1.0
_OK_BODY = b'{"status":"ok"}'
_FAULT_BODY = b'{"status":"error","error":"injected fault"}'
# RFC 9110 forbids a body in these responses; writing one would corrupt the next response on a
# keep-alive connection.
_BODILESS_STATUSES = (204, 304)

_logger = logging.getLogger("gainsight_segment")


def _to_statuses(values: Iterable[int]) -> tuple[int, ...]:
    return tuple(values)


def _check_statuses(_: object, attribute: attrs.Attribute[Any], value: tuple[int, ...]) -> None:
    for status in value:
        # bool is an int subclass, but True is never a meaningful status.
        if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
            raise ValueError(
                f"{attribute.name} must hold final HTTP statuses (200-599), got {status!r}"
            )


def _check_rate(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    # Written so that NaN fails too.
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be a probability between 0 and 1, got {value!r}")


def _check_seconds(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{attribute.name} must be a finite number of seconds >= 0, got {value!r}")


def _check_not_empty(_: object, attribute: attrs.Attribute[Any], value: tuple[int, ...]) -> None:
    if not value:
        raise ValueError(f"{attribute.name} must name at least one status")


@attrs.frozen(kw_only=True)
class Faults:
    """How a `LocalCollector` misbehaves; the defaults are flawless service.

    Faults apply only to requests that honour the endpoint contract. For each such request the
    collector first holds it if `stall` is set, then waits `latency` (or `slow_latency`), then
    either closes the connection (`drop_rate`) or answers with a fault status (`statuses`, then
    `failure_rate`), or accepts the message. A request answered with a 2xx status, scripted or
    not, is accepted and recorded; any other outcome records no message.

    Attributes:
        statuses: Statuses answered, in order, to the first ``len(statuses)`` requests; normal
            service follows. Scripted requests are never dropped nor randomly failed, so a test
            can rely on the exact sequence. 1xx statuses are refused: they are not final answers
            and a client would wait forever for one.
        failure_rate: Probability that a request is answered with one of `failure_statuses`.
        failure_statuses: The statuses a random failure picks from, uniformly.
        retry_after: Seconds sent in a ``Retry-After`` header on every fault answer with status
            429 or 503. Whole numbers are written as integers (``"2"``), the only form RFC 9110
            allows; fractions are written as decimals to the millisecond (``"0.5"``) to keep
            tests fast, which a client must parse itself: urllib3's ``Retry`` rejects them.
        latency: Seconds waited before answering each request.
        slow_rate: Probability that a request waits `slow_latency` instead of `latency`, to
            simulate answers slower than the client's timeout.
        slow_latency: Seconds waited by the slow requests.
        drop_rate: Probability that the connection is closed without any answer.
        stall: Hold every request unanswered until `LocalCollector.release` is called, `faults`
            is reassigned, or the collector stops; then answer it normally.
        seed: Seed of the random generator behind the rates, for reproducible runs.

    Raises:
        ValueError: A rate outside [0, 1], a negative or infinite delay, a status outside
            200-599, or an empty `failure_statuses`.
    """

    statuses: tuple[int, ...] = attrs.field(
        default=(), converter=_to_statuses, validator=_check_statuses
    )
    failure_rate: float = attrs.field(default=0.0, validator=_check_rate)
    failure_statuses: tuple[int, ...] = attrs.field(
        default=(500,), converter=_to_statuses, validator=[_check_statuses, _check_not_empty]
    )
    retry_after: float | None = attrs.field(default=None, validator=_check_seconds)
    latency: float = attrs.field(default=0.0, validator=_check_seconds)
    slow_rate: float = attrs.field(default=0.0, validator=_check_rate)
    slow_latency: float = attrs.field(default=0.0, validator=_check_seconds)
    drop_rate: float = attrs.field(default=0.0, validator=_check_rate)
    stall: bool = False
    seed: int | None = None


@attrs.frozen
class Request:
    """One HTTP request the collector answered (or dropped).

    Attributes:
        method: The HTTP method, e.g. ``"POST"``.
        path: The request target as sent, query string included.
        headers: The request headers, names as the client spelled them.
        status: The status answered, or None when the connection was dropped on purpose.
        body: The raw request body.
    """

    method: str
    path: str
    headers: dict[str, str]
    status: int | None
    body: bytes


@attrs.frozen
class _Plan:
    """What the faults decided for one request."""

    release: threading.Event | None
    delay: float
    drop: bool
    status: int
    retry_after: float | None


class _Rejected(Exception):
    """A request that breaks the endpoint contract or HTTP framing."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _body_length(transfer_encoding: str | None, content_length: str | None) -> int:
    """Return the body length a request announces.

    Raises:
        _Rejected: The body cannot be framed, or is too large.
    """
    if transfer_encoding is not None:
        raise _Rejected(411, "send the body with a Content-Length header")
    if content_length is None:
        # RFC 9112: a request with neither header has no body.
        return 0
    text = content_length.strip()
    # isdigit() alone accepts non-ASCII digits that int() then refuses or misreads.
    if not (text.isascii() and text.isdigit()):
        raise _Rejected(400, "malformed Content-Length header")
    length = int(text)
    if length > _MAX_BODY_BYTES:
        raise _Rejected(413, f"body over {_MAX_BODY_BYTES} bytes")
    return length


def _check_request(
    method: str,
    path: str,
    content_type: str | None,
    access_key: str | None,
    body: bytes,
    expected_key: str,
) -> dict[str, Any]:
    """Apply the endpoint contract to one request and return the message it carries.

    Raises:
        _Rejected: The request breaks the contract.
    """
    if path.partition("?")[0] != _EVENT_PATH:
        raise _Rejected(404, "not found")
    if method != "POST":
        raise _Rejected(405, "method not allowed", {"Allow": "POST"})
    if access_key != expected_key:
        raise _Rejected(401, "missing or wrong accessKey header")
    media_type = (content_type or "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise _Rejected(415, "Content-Type must be application/json")
    try:
        message = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise _Rejected(400, "body is not valid UTF-8") from None
    except (ValueError, RecursionError) as error:
        raise _Rejected(400, f"body is not valid JSON: {error}") from None
    if not isinstance(message, dict):
        raise _Rejected(400, "body must be a JSON object")
    if message.get("type") not in _MESSAGE_TYPES:
        raise _Rejected(400, "type must be identify, track or group")
    return message


def _error_body(reason: str) -> bytes:
    return json.dumps({"status": "error", "error": reason}).encode()


def _format_seconds(seconds: float) -> str:
    if float(seconds).is_integer():
        return str(int(seconds))
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


def _loopback_address(host: str) -> tuple[str, socket.AddressFamily]:
    """Return the IP address to bind for `host` and its family.

    Raises:
        ValueError: `host` is not a loopback address.
    """
    if host.lower() == "localhost":
        # Binding the name could pick either family; the endpoint must name the one bound.
        return "127.0.0.1", socket.AF_INET
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise ValueError(
            f"the collector only binds loopback addresses (localhost, 127.0.0.0/8, ::1), "
            f"got {host!r}"
        )
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    return str(address), family


class _Server(http.server.ThreadingHTTPServer):
    """The listening socket; one daemon thread per connection."""

    daemon_threads = True
    # Connection threads are joined by LocalCollector.stop, with a deadline.
    block_on_close = False
    allow_reuse_address = True
    # Load tests open connections in bursts; the default backlog of 5 would refuse them.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], collector: LocalCollector) -> None:
        self.collector = collector
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn) just to fill server_name,
        # which can stall for seconds on a badly configured resolver.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: object, client_address: object) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            # Clients that reset or vanish are routine in fault tests; not worth a traceback.
            _logger.debug("collector: connection %s ended: %r", client_address, error)
        else:
            _logger.error("collector: error serving %s", client_address, exc_info=True)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(http.server.BaseHTTPRequestHandler):
    """Speaks HTTP for one connection; the collector holds all state."""

    protocol_version = "HTTP/1.1"
    server_version = "gainsight-segment-collector"
    sys_version = ""
    # A buffered writer sends status line, headers and body in one segment when
    # handle_one_request flushes, and TCP_NODELAY stops Nagle from holding back what follows:
    # split small writes meeting delayed ACKs cost 40 ms per request.
    wbufsize = -1
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.collector._register(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.collector._unregister(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        # The base class writes a line to stderr per request.
        _logger.debug("collector: " + format, *args)

    def handle_expect_100(self) -> bool:
        # With a buffered writer the interim answer would sit in the buffer while the client
        # waits for it before sending the body.
        accepted = super().handle_expect_100()
        self.wfile.flush()
        return accepted

    def do_POST(self) -> None:
        self._dispatch()

    # Other methods must reach the contract check to get 405 on the event path and 404
    # elsewhere, rather than the base class's 501.
    do_GET = do_HEAD = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_POST

    def _dispatch(self) -> None:
        collector = self.server.collector
        try:
            length = _body_length(
                self.headers.get("Transfer-Encoding"), self.headers.get("Content-Length")
            )
        except _Rejected as rejected:
            # The body was not read, so the connection cannot carry another request.
            self.close_connection = True
            self._answer(rejected.status, _error_body(rejected.reason), b"")
            return
        body = self.rfile.read(length)
        if len(body) < length:
            # The client went away mid-body: nobody is left to answer.
            self.close_connection = True
            return
        try:
            message = _check_request(
                self.command,
                self.path,
                self.headers.get("Content-Type"),
                self.headers.get("accessKey"),
                body,
                collector.access_key,
            )
        except _Rejected as rejected:
            self._answer(rejected.status, _error_body(rejected.reason), body, rejected.headers)
            return
        plan = collector._plan()
        if plan.release is not None:
            plan.release.wait()
        if plan.delay:
            # Waiting on the stop event lets stop() cut long delays short.
            collector._stopping.wait(plan.delay)
        if plan.drop:
            collector._record_request(self._request(None, body))
            self.close_connection = True
            return
        if 200 <= plan.status < 300:
            collector._accept(message)
            self._answer(plan.status, _OK_BODY, body)
            return
        headers = {}
        if plan.retry_after is not None and plan.status in (429, 503):
            headers["Retry-After"] = _format_seconds(plan.retry_after)
        self._answer(plan.status, _FAULT_BODY, body, headers)

    def _request(self, status: int | None, body: bytes) -> Request:
        return Request(self.command, self.path, dict(self.headers.items()), status, body)

    def _answer(
        self,
        status: int,
        payload: bytes,
        request_body: bytes,
        headers: dict[str, str] | None = None,
    ) -> None:
        # Recorded before answering so that a client holding the answer can rely on the record.
        self.server.collector._record_request(self._request(status, request_body))
        if status in _BODILESS_STATUSES:
            payload = b""
        self.send_response(status)
        if status not in _BODILESS_STATUSES:
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


class LocalCollector:
    """A real HTTP server on loopback that accepts what Gainsight's event endpoint accepts.

    It binds at construction (so `endpoint` is known before `start`), serves many concurrent
    keep-alive connections, records every accepted message, and misbehaves as its `faults` say.
    Use it as a context manager::

        with LocalCollector() as collector:
            client = gainsight_segment.Client(DEMO_ACCESS_KEY, endpoint=collector.endpoint)
            client.track("123", "Account Created", {"accountId": "o283"})
            client.flush()
            assert collector.messages[0]["event"] == "Account Created"

    A collector cannot be restarted once stopped. All methods are thread-safe.

    Args:
        access_key: The ``accessKey`` header value to accept; other values get 401.
        host: A loopback address to bind: ``127.0.0.1`` (default), another ``127.0.0.0/8``
            address, ``::1``, or ``localhost`` (bound as ``127.0.0.1``).
        port: The port to bind; 0 picks a free ephemeral port.
        faults: The initial faults; None means flawless service.
        on_message: Called with each accepted message, in the serving thread, before the
            client gets its answer. Exceptions it raises are logged to the ``gainsight_segment``
            logger and otherwise ignored.

    Raises:
        ValueError: `host` is not a loopback address or `port` is out of range.
        OSError: The address cannot be bound.
    """

    def __init__(
        self,
        access_key: str = DEMO_ACCESS_KEY,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        on_message: Callable[[dict[str, Any]], object] | None = None,
    ) -> None:
        address, family = _loopback_address(host)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an integer from 0 to 65535, got {port!r}")
        self._access_key = access_key
        self._on_message = on_message
        self._changed = threading.Condition(threading.Lock())
        self._messages: list[dict[str, Any]] = []
        self._requests: list[Request] = []
        self._faults = faults if faults is not None else Faults()
        self._random = random.Random(self._faults.seed)
        self._scripted = 0
        self._released = threading.Event()
        self._stopping = threading.Event()
        self._stopped = False
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._thread: threading.Thread | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._host = address
        server_class = _Server6 if family == socket.AF_INET6 else _Server
        self._server = server_class((address, port), self)

    def __repr__(self) -> str:
        # The access key stays out of reprs, as everywhere in the library.
        if self._stopped:
            state = "stopped"
        else:
            state = "running" if self._thread is not None else "not started"
        return f"<LocalCollector endpoint={self.endpoint!r} {state}>"

    def __enter__(self) -> LocalCollector:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def access_key(self) -> str:
        """The access key the collector accepts."""
        return self._access_key

    @property
    def port(self) -> int:
        """The port the collector is bound to."""
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        """The base URL to give a client, e.g. ``"http://127.0.0.1:53124"``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def faults(self) -> Faults:
        """The faults in effect; assign new ones to change behaviour while running.

        Assigning restarts the `Faults.statuses` script and the random generator, answers the
        requests held by the previous faults, and re-arms `Faults.stall`.
        """
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        with self._changed:
            self._faults = faults
            self._random = random.Random(faults.seed)
            self._scripted = 0
            self._released.set()
            self._released = threading.Event()
            if self._stopping.is_set():
                self._released.set()

    @property
    def messages(self) -> list[dict[str, Any]]:
        """A copy of the accepted messages, in arrival order."""
        with self._changed:
            return list(self._messages)

    @property
    def requests(self) -> list[Request]:
        """A copy of the requests answered or dropped, in order, rejected ones included."""
        with self._changed:
            return list(self._requests)

    def start(self) -> None:
        """Start serving in a background thread; does nothing if already serving.

        Raises:
            RuntimeError: The collector was stopped.
        """
        with self._changed:
            if self._stopped:
                raise RuntimeError("a stopped LocalCollector cannot be restarted")
            if self._thread is not None:
                return
            # A socket pair wakes the accept loop at once on stop, without polling.
            self._wake = socket.socketpair()
            self._server.socket.settimeout(_ACCEPT_TIMEOUT)
            self._thread = threading.Thread(
                target=self._serve,
                args=(self._wake[0],),
                name=f"gainsight-segment-collector:{self.port}",
                daemon=True,
            )
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close every connection; idempotent.

        Stalled and delayed requests are answered first, then connections are closed. Waits at
        most `timeout` seconds in all for the serving threads to finish.

        Args:
            timeout: Seconds to wait for the serving threads.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            if self._stopped:
                return
            self._stopped = True
            self._stopping.set()
            self._released.set()
            thread, wake = self._thread, self._wake
        if wake is not None:
            with contextlib.suppress(OSError):
                wake[1].send(b"\0")
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._server.server_close()
        if wake is not None:
            for end in wake:
                end.close()
        self._close_connections(deadline)

    def release(self) -> None:
        """Answer the requests held by `Faults.stall`, and stop holding new ones.

        Holding resumes when `faults` is next assigned.
        """
        with self._changed:
            self._released.set()

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until at least `count` messages were accepted since the last `clear`.

        Args:
            count: The number of messages to wait for.
            timeout: The most seconds to wait.

        Returns:
            True if `count` messages arrived, False if the deadline passed first.
        """
        with self._changed:
            return self._changed.wait_for(lambda: len(self._messages) >= count, max(0.0, timeout))

    def clear(self) -> None:
        """Forget the recorded messages and requests; faults are left as they are."""
        with self._changed:
            self._messages.clear()
            self._requests.clear()

    def _serve(self, wake: socket.socket) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._server.socket, selectors.EVENT_READ)
            selector.register(wake, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self._server.socket and not self._stopping.is_set():
                        self._accept_connection()

    def _accept_connection(self) -> None:
        server = self._server
        try:
            request, address = server.get_request()
        except OSError:
            # The client gave up between readiness and accept(); the listener is fine.
            return
        try:
            server.process_request(request, address)
        except Exception:
            server.handle_error(request, address)
            server.shutdown_request(request)

    def _register(self, connection: socket.socket) -> None:
        with self._changed:
            self._connections[connection] = threading.current_thread()
            if self._stopping.is_set():
                # Accepted while stop() was closing the others; it would be missed.
                _shutdown(connection, socket.SHUT_RD)

    def _unregister(self, connection: socket.socket) -> None:
        with self._changed:
            self._connections.pop(connection, None)

    def _close_connections(self, deadline: float) -> None:
        # Shutting down only the read side ends idle keep-alive connections while letting
        # released requests still write their answers. The lock is held around shutdown() so a
        # socket cannot be closed, and its descriptor reused, under it.
        with self._changed:
            threads = list(self._connections.values())
            for connection in self._connections:
                _shutdown(connection, socket.SHUT_RD)
        current = threading.current_thread()
        for thread in threads:
            if thread is not current:
                thread.join(max(0.0, deadline - time.monotonic()))
        with self._changed:
            for connection in self._connections:
                _shutdown(connection, socket.SHUT_RDWR)

    def _plan(self) -> _Plan:
        with self._changed:
            faults = self._faults
            rng = self._random
            # Each rate draws only when set, so a seed gives the same sequence whatever the
            # other knobs are.
            slow = faults.slow_rate > 0 and rng.random() < faults.slow_rate
            delay = faults.slow_latency if slow else faults.latency
            status, drop = 200, False
            if self._scripted < len(faults.statuses):
                status = faults.statuses[self._scripted]
                self._scripted += 1
            elif faults.drop_rate > 0 and rng.random() < faults.drop_rate:
                drop = True
            elif faults.failure_rate > 0 and rng.random() < faults.failure_rate:
                status = rng.choice(faults.failure_statuses)
            release = self._released if faults.stall and not self._released.is_set() else None
            return _Plan(release, delay, drop, status, faults.retry_after)

    def _accept(self, message: dict[str, Any]) -> None:
        if self._on_message is not None:
            try:
                self._on_message(message)
            except Exception:
                _logger.exception("collector: on_message callback raised")
        with self._changed:
            self._messages.append(message)
            self._changed.notify_all()

    def _record_request(self, request: Request) -> None:
        with self._changed:
            self._requests.append(request)


def _shutdown(connection: socket.socket, how: int) -> None:
    # Already closed or reset by the peer: nothing is left to shut down.
    with contextlib.suppress(OSError):
        connection.shutdown(how)

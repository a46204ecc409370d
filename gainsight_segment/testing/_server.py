"""The collector's HTTP server: the listening socket, and one handler per connection.

Request handling, in order:

1. Framing: the body must come with a ``Content-Length`` (411 for ``Transfer-Encoding``, 400 for
   a malformed length, 413 over 1 MiB; the connection is closed after each of these).
2. The contract (:func:`~._contract.check_request`): path 404, method 405, ``accessKey`` 401,
   ``Content-Type`` 415, body 400. Breaking the contract is a client bug, so such requests are
   answered at once and no fault applies to them.
3. Faults, for requests that honour the contract: stall, then delay, then drop or status.
4. Recording: only requests answered with a 2xx become messages. Every request that got this far,
   including rejected and dropped ones, is kept as a :class:`ReceivedRequest`.
"""

from __future__ import annotations

import http.server
import ipaddress
import logging
import socket
import socketserver
import sys
from typing import TYPE_CHECKING, Any

import attrs

from ._contract import Rejected, body_length, check_request, error_body

if TYPE_CHECKING:
    from ._collector import LocalCollector

__all__ = ["ReceivedRequest"]

_OK_BODY = b'{"status":"ok"}'
_FAULT_BODY = b'{"status":"error","error":"injected fault"}'
# RFC 9110 forbids a body in these responses; writing one would corrupt the next response on a
# keep-alive connection.
_BODILESS_STATUSES = (204, 304)

_logger = logging.getLogger("gainsight_segment")


def _masked(value: str) -> str:
    # As the client shows its key: "****" and the last four, and nothing of a value so short
    # that four characters would give most of it away.
    return "****" + value[-4:] if len(value) >= 16 else "****"


def _show_headers(headers: dict[str, str]) -> str:
    shown = {
        name: _masked(value) if name.lower() == "accesskey" else value
        for name, value in headers.items()
    }
    return repr(shown)


@attrs.frozen
class ReceivedRequest:
    """One HTTP request a :class:`LocalCollector` answered (or dropped), as it received it.

    Its ``repr()`` masks the ``accessKey`` header (``****e862``), so that a failing assertion
    or a log line never shows a key; :attr:`headers` holds it as received.

    Attributes:
        method: The HTTP method, e.g. ``"POST"``.
        path: The request target as sent, query string included.
        headers: The request headers, names as the client spelled them.
        status: The status answered, or None when the connection was dropped on purpose.
        body: The raw request body.
    """

    method: str
    path: str
    headers: dict[str, str] = attrs.field(repr=_show_headers)
    status: int | None
    body: bytes


def _format_seconds(seconds: float) -> str:
    if float(seconds).is_integer():
        return str(int(seconds))
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


def loopback_address(host: str) -> tuple[str, socket.AddressFamily]:
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


class Server(http.server.ThreadingHTTPServer):
    """The listening socket; one daemon thread per connection."""

    daemon_threads = True
    # Connection threads are joined by LocalCollector.stop, with a deadline.
    block_on_close = False
    allow_reuse_address = True
    # Load tests open connections in bursts; the default backlog of 5 would refuse them.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], collector: LocalCollector) -> None:
        self.collector = collector
        super().__init__(address, Handler)

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


class Server6(Server):
    address_family = socket.AF_INET6


class Handler(http.server.BaseHTTPRequestHandler):
    """Speaks HTTP for one connection; the collector holds all state."""

    protocol_version = "HTTP/1.1"
    server_version = "gainsight-segment-collector"
    sys_version = ""
    # A buffered writer sends status line, headers and body in one segment when
    # handle_one_request flushes, and TCP_NODELAY stops Nagle from holding back what follows:
    # split small writes meeting delayed ACKs cost 40 ms per request.
    wbufsize = -1
    disable_nagle_algorithm = True
    server: Server

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
            length = body_length(
                self.headers.get("Transfer-Encoding"), self.headers.get("Content-Length")
            )
        except Rejected as rejected:
            # The body was not read, so the connection cannot carry another request.
            self.close_connection = True
            self._answer(rejected.status, error_body(rejected.reason), b"")
            return
        body = self.rfile.read(length)
        if len(body) < length:
            # The client went away mid-body: nobody is left to answer.
            self.close_connection = True
            return
        try:
            message = check_request(
                self.command,
                self.path,
                self.headers.get("Content-Type"),
                self.headers.get("accessKey"),
                body,
                collector.access_key,
            )
        except Rejected as rejected:
            self._answer(rejected.status, error_body(rejected.reason), body, rejected.headers)
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

    def _request(self, status: int | None, body: bytes) -> ReceivedRequest:
        return ReceivedRequest(self.command, self.path, dict(self.headers.items()), status, body)

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

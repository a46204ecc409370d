"""LocalCollector: a loopback HTTP server that speaks the Gainsight event endpoint contract.

`LocalCollector` accepts exactly what Gainsight's ``/clickstream/segmentio/event`` endpoint
accepts, records what it receives, and can misbehave on demand (`Faults`) so that retries,
timeouts and outages can be exercised against a real socket. The demo, the test suite, users' own
tests and the benchmarks all use it. How each request is handled is told in ``_server.py``.
"""

from __future__ import annotations

import contextlib
import logging
import random
import selectors
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import attrs

from ._faults import Faults
from ._server import ReceivedRequest, Server, Server6, loopback_address

__all__ = ["DEMO_ACCESS_KEY", "LocalCollector"]

DEMO_ACCESS_KEY = "00000000-0000-4000-8000-000000000000"
"""A well-formed access key for demos and tests; the collector expects it by default."""

# How long the accept loop may block in accept() after a spurious readiness report, which
# bounds how long stop() can wait for it.
_ACCEPT_TIMEOUT = 1.0

_logger = logging.getLogger("gainsight_segment")


@attrs.frozen
class _Plan:
    """What the faults decided for one request."""

    release: threading.Event | None
    delay: float
    drop: bool
    status: int
    retry_after: float | None


class LocalCollector:
    """A real HTTP server on loopback that accepts what Gainsight's event endpoint accepts.

    It binds at construction (so `endpoint` is known before `start`), serves many concurrent
    keep-alive connections, records every accepted message, and misbehaves as its `faults` say.
    Use it as a context manager::

        with LocalCollector() as collector:
            client = gainsight_segment.Client(
                DEMO_ACCESS_KEY, endpoint=collector.endpoint
            )
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
        address, family = loopback_address(host)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port: must be an integer from 0 to 65535, got {port!r}")
        self._access_key = access_key
        self._on_message = on_message
        self._changed = threading.Condition(threading.Lock())
        self._messages: list[dict[str, Any]] = []
        self._requests: list[ReceivedRequest] = []
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
        server_class = Server6 if family == socket.AF_INET6 else Server
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
    def requests(self) -> list[ReceivedRequest]:
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

    def _record_request(self, request: ReceivedRequest) -> None:
        with self._changed:
            self._requests.append(request)


def _shutdown(connection: socket.socket, how: int) -> None:
    # Already closed or reset by the peer: nothing is left to shut down.
    with contextlib.suppress(OSError):
        connection.shutdown(how)

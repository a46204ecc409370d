"""The transports that come with the library: through requests, and requests' own pool."""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Mapping
from http.client import HTTPException, RemoteDisconnected
from typing import Any

import requests
import requests.adapters
import requests.utils
import urllib3
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    HTTPError,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)

from ._deadline import AttemptClock, DeadlineAdapter, pool_classes
from ._errors import TransportError, TransportErrorKind
from ._exchange import Request, Response
from ._wire import MAX_RESPONSE_BODY

# --- reading what came back -------------------------------------------------------------


def _read_capped(raw: Any) -> tuple[bytes, bool]:
    """Read at most ``MAX_RESPONSE_BODY`` bytes of a body, undecoded; say if that was all."""
    data: bytes = raw.read(MAX_RESPONSE_BODY + 1, decode_content=False) or b""
    return data[:MAX_RESPONSE_BODY], len(data) <= MAX_RESPONSE_BODY


def _decoded(body: bytes, encoding: str | None) -> bytes:
    """Decompress the start of a body, never past ``MAX_RESPONSE_BODY`` bytes of output."""
    if not body or encoding is None:
        return body
    encoding = encoding.strip().lower()
    if encoding not in ("gzip", "x-gzip", "deflate"):
        return body
    # 47 accepts a gzip or zlib header; -15 is a bare deflate stream, which some servers send.
    for wbits in (47, -15):
        try:
            return zlib.decompressobj(wbits).decompress(body, MAX_RESPONSE_BODY)
        except zlib.error:
            continue
    return b"(a compressed body that could not be decompressed)"


def _finish(raw: Any, complete: bool) -> None:
    # A connection whose answer was not read to its end cannot carry another request.
    if not complete:
        raw.close()
    release = getattr(raw, "release_conn", None)
    if release is not None:
        release()


def _chain(exc: BaseException) -> list[BaseException]:
    """An exception and those it wraps: requests and urllib3 nest their causes."""
    found: list[BaseException] = []
    todo = [exc]
    while todo and len(found) < 8:
        current = todo.pop()
        if current in found:
            continue
        found.append(current)
        nested = [*current.args, getattr(current, "reason", None)]
        nested += [current.__cause__, current.__context__]
        todo.extend(item for item in nested if isinstance(item, BaseException))
    return found


def _transport_error(exc: BaseException) -> TransportError:
    """Say which kind of failure an exception from requests or urllib3 is."""
    chain = _chain(exc)

    def has(*types: type[BaseException]) -> bool:
        return any(isinstance(item, types) for item in chain)

    kind: TransportErrorKind = "network"
    if has(SSLError, ssl.SSLError, requests.exceptions.SSLError):
        kind = "tls"
    elif has(ReadTimeoutError, socket.timeout, requests.Timeout) or any(
        # urllib3 makes a refused connection a kind of connect timeout; it is not one.
        isinstance(item, ConnectTimeoutError) and not isinstance(item, NewConnectionError)
        for item in chain
    ):
        kind = "timeout"
    elif has(requests.exceptions.ChunkedEncodingError, DecodeError) or any(
        isinstance(item, HTTPException) and not isinstance(item, RemoteDisconnected)
        for item in chain
    ):
        kind = "invalid_response"
    return TransportError(f"{type(exc).__name__}: {exc}", kind=kind)


def _send_through_session(session: requests.Session, request: Request, timeout: float) -> Response:
    prepared = session.prepare_request(
        requests.Request(request.method, request.url, headers=dict(request.headers))
    )
    prepared.body = request.body
    prepared.headers["Content-Length"] = str(len(request.body))
    try:
        answer = session.send(
            prepared, timeout=(timeout, timeout), allow_redirects=False, stream=True
        )
    except Exception as exc:
        # Whatever a mounted adapter or a mock raises (requests-mock's NoMockAddress is no
        # requests exception) means no response came back.
        raise _transport_error(exc) from None
    try:
        body, complete = _read_capped(answer.raw)
    except (requests.RequestException, HTTPError, OSError) as exc:
        answer.close()
        raise _transport_error(exc) from None
    _finish(answer.raw, complete)
    headers = answer.headers
    return Response(answer.status_code, headers, _decoded(body, headers.get("Content-Encoding")))


# Where requests' own sending methods are defined: anything else in their place is a mock.
_GENUINE = (("requests.adapters", "HTTPAdapter.send"), ("requests.sessions", "Session.send"))


def _sending_methods() -> tuple[object, object]:
    return requests.adapters.HTTPAdapter.send, requests.Session.send


def _is_patched(methods: tuple[object, object]) -> bool:
    """Whether something (a mock) replaced the methods requests sends through.

    Judged by where the methods come from, not by identity with what was there when this
    module was imported: a mock may have been started before.
    """
    found = tuple(
        (getattr(method, "__module__", None), getattr(method, "__qualname__", None))
        for method in methods
    )
    return found != _GENUINE


class _ForkAware:
    """Remembers the process it was made in, to notice it now runs in a forked child."""

    def __init__(self) -> None:
        self._pid = os.getpid()

    def _forked(self) -> bool:
        if self._pid == os.getpid():
            return False
        self._pid = os.getpid()
        return True


class RequestsTransport(_ForkAware):
    """Sends through a ``requests.Session`` of yours, by its public ``send``.

    Everything set on the session applies: mounted adapters, hooks, CA bundle, client
    certificate, proxies. Redirects are never followed; the response body is read up to
    4 KB. ``timeout`` bounds the connection and each read, as in requests (the
    :class:`DefaultTransport` bounds the whole attempt). The client never closes your
    session; in a forked child, its pooled connections (the parent's) are dropped first.

    Args:
        session: The session.
    """

    def __init__(self, session: requests.Session) -> None:
        super().__init__()
        self._session = session

    def __repr__(self) -> str:
        return f"RequestsTransport({self._session!r})"

    def send(self, request: Request, timeout: float) -> Response:
        """Send once through the session; see :meth:`Transport.send`."""
        if self._forked():
            for adapter in self._session.adapters.values():
                adapter.close()
        return _send_through_session(self._session, request, timeout)

    def close(self) -> None:
        """Do nothing: the session is yours."""


class DefaultTransport(_ForkAware):
    """The client's own transport: pooled connections, fast, and seen by users' mocks.

    Requests go straight to a urllib3 connection pool of its own, set up with requests'
    TLS defaults, without requests' per-request layer, which costs more CPU than the HTTP
    exchange itself. While ``requests`` is patched (``responses``, ``requests-mock`` and
    other mocks patch ``HTTPAdapter.send`` or ``Session.send``), and whenever proxies are
    set, requests go through a ``requests.Session`` of its own instead, by
    ``Session.send``, so that mocks see every request. Either way a whole attempt ends
    within ``timeout`` (plus scheduling), however slowly the server answers.

    Args:
        verify: TLS verification: ``True``, ``False`` or the path of a CA bundle.
        proxies: Proxies by URL scheme, as in requests; the environment is not read.
        pool_size: Connections kept open for reuse.
    """

    def __init__(
        self,
        *,
        verify: bool | str = True,
        proxies: Mapping[str, str] | None = None,
        pool_size: int = 10,
    ) -> None:
        super().__init__()
        self._verify = verify
        self._proxies = dict(proxies or {})
        self._pool_size = pool_size
        self._clock = AttemptClock()
        self._classes = pool_classes(self._clock)
        self._limits = (0.0, urllib3.Timeout())  # the last timeout, made once
        self._methods = _sending_methods()
        self._patched = _is_patched(self._methods)  # judged again when the methods change
        self._open()

    def _open(self) -> None:
        session = requests.Session()
        # Environment look-ups (proxies, netrc) would let the environment send the key
        # elsewhere; proxies are an explicit setting instead.
        session.trust_env = False
        session.verify = self._verify
        session.proxies = dict(self._proxies)
        adapter = DeadlineAdapter(self._classes, pool_maxsize=self._pool_size)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        self._session = session
        self._pools: dict[str, tuple[HTTPConnectionPool, str]] = {}
        self._pools_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DefaultTransport(verify={self._verify!r}, pool_size={self._pool_size})"

    def send(self, request: Request, timeout: float) -> Response:
        """Send once; see :meth:`Transport.send`."""
        if self._forked():
            self._after_fork()
        clock = self._clock
        clock.deadline = time.monotonic() + timeout
        try:
            if self._proxies or self._mocked():
                return _send_through_session(self._session, request, timeout)
            return self._send_direct(request, timeout)
        finally:
            clock.deadline = None

    def _mocked(self) -> bool:
        methods = _sending_methods()
        if methods != self._methods:
            self._methods, self._patched = methods, _is_patched(methods)
        return self._patched

    def _send_direct(self, request: Request, timeout: float) -> Response:
        pool, target = self._pool(request.url)
        seconds, limits = self._limits
        if seconds != timeout:
            limits = urllib3.Timeout(connect=timeout, read=timeout)
            self._limits = (timeout, limits)
        try:
            raw = pool.urlopen(
                request.method,
                target,
                body=request.body,
                headers=request.headers,
                retries=False,
                redirect=False,
                assert_same_host=False,
                timeout=limits,
                preload_content=False,
                decode_content=False,
            )
        except HTTPError as exc:
            raise _transport_error(exc) from None
        try:
            body, complete = _read_capped(raw)
        except (HTTPError, OSError) as exc:
            raw.close()
            raise _transport_error(exc) from None
        _finish(raw, complete)
        headers = raw.headers
        return Response(raw.status, headers, _decoded(body, headers.get("Content-Encoding")))

    def _pool(self, url: str) -> tuple[HTTPConnectionPool, str]:
        found = self._pools.get(url)
        if found is not None:
            return found
        with self._pools_lock:
            found = self._pools.get(url)
            if found is None:
                found = self._pools[url] = self._new_pool(url)
        return found

    def _new_pool(self, url: str) -> tuple[HTTPConnectionPool, str]:
        parts = urllib3.util.parse_url(url)
        scheme = parts.scheme or "http"
        options: dict[str, Any] = {"maxsize": self._pool_size, "block": False}
        if scheme == "https":
            options.update(_tls_options(self._verify))
        pool = self._classes[scheme](parts.host or "", parts.port, **options)
        return pool, parts.request_uri

    def _after_fork(self) -> None:
        # The parent's pooled connections are shared with it: a response could reach the
        # wrong process. Their file descriptors are closed here without taking the pools'
        # locks, which a parent thread may have held at the fork.
        for pool, _ in self._pools.values():
            idle = getattr(pool.pool, "queue", ())
            for conn in list(idle):
                if conn is not None:
                    conn.close()
        self._open()

    def close(self) -> None:
        """Close the pooled connections."""
        for pool, _ in list(self._pools.values()):
            pool.close()
        self._session.close()


def _tls_options(verify: bool | str) -> dict[str, Any]:
    # What requests applies to its pools for the same ``verify`` value.
    if verify is False:
        return {"cert_reqs": "CERT_NONE"}
    if verify is True:
        return {"cert_reqs": "CERT_REQUIRED", "ca_certs": requests.utils.DEFAULT_CA_BUNDLE_PATH}
    if os.path.isdir(verify):
        return {"cert_reqs": "CERT_REQUIRED", "ca_cert_dir": verify}
    return {"cert_reqs": "CERT_REQUIRED", "ca_certs": verify}

"""A loopback HTTP/1.1 server whose every answer a test writes: bytes, trickles, silences.

The LocalCollector plays a well-behaved (or randomly faulty) Gainsight; this one plays a
precise or hostile one, byte by byte, for the transport's tests.
"""

from __future__ import annotations

import functools
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Callable, Union

DATA = Path(__file__).resolve().parent / "data"
CERTIFICATE = str(DATA / "localhost-cert.pem")

# What a script yields: bytes to send, or seconds to wait before the next write.
Step = Union[bytes, float]
Script = Callable[[bytes], Iterable[Step]]


def answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 response with a Content-Length."""
    lines = [f"HTTP/1.1 {status} Status", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class ScriptedServer:
    """Serves each request on loopback with what ``script(request bytes)`` yields.

    Args:
        script: Given the raw request (head and body), yields the answer's bytes, and
            floats to pause between writes; when it ends, the connection stays open for
            the next request (keep-alive) unless it yielded ``b""``, which closes it.
    """

    def __init__(self, script: Script, *, tls: ssl.SSLContext | None = None) -> None:
        self._script = script
        self._tls = tls
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self.endpoint = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.requests: list[bytes] = []
        self.connections = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                continue
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._talk, args=(connection,), daemon=True).start()

    def _talk(self, connection: socket.socket) -> None:
        # Answers written in several pieces must not wait for delayed ACKs.
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection.settimeout(10)
        if self._tls is not None:
            try:
                connection = self._tls.wrap_socket(connection, server_side=True)
            except (OSError, ssl.SSLError):
                connection.close()
                return
        with connection:
            for request in _requests(connection):
                with self._lock:
                    self.requests.append(request)
                if not self._play(connection, request):
                    return

    def _play(self, connection: socket.socket, request: bytes) -> bool:
        for step in self._script(request):
            if self._stop.is_set():
                return False
            if isinstance(step, float):
                self._stop.wait(step)
            elif not step:
                return False
            else:
                try:
                    connection.sendall(step)
                except OSError:
                    return False
        return True


def _requests(connection: socket.socket) -> Iterator[bytes]:
    """Read requests off a connection until it closes."""
    buffer = b""
    while True:
        while b"\r\n\r\n" not in buffer:
            chunk = _recv(connection)
            if not chunk:
                return
            buffer += chunk
        head, _, rest = buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            chunk = _recv(connection)
            if not chunk:
                return
            rest += chunk
        yield head + b"\r\n\r\n" + rest[:length]
        buffer = rest[length:]


def _recv(connection: socket.socket) -> bytes:
    try:
        return connection.recv(65536)
    except OSError:
        return b""


def trickle(data: bytes, every: float) -> Iterator[Step]:
    """Send ``data`` one byte at a time, ``every`` seconds apart."""
    for index in range(len(data)):
        yield data[index : index + 1]
        yield every


@functools.lru_cache(maxsize=1)
def gzip_bomb() -> bytes:
    """200 MB of zeros, gzipped to about 200 KB (made once: compressing takes seconds)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * (1024 * 1024)
    return b"".join([*(compressor.compress(chunk) for _ in range(200)), compressor.flush()])


def tls_context() -> ssl.SSLContext:
    """A server context with the self-signed certificate of ``localhost``/127.0.0.1."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(CERTIFICATE, DATA / "localhost-key.pem")
    return context


def elapsed(since: float) -> float:
    """Seconds since a ``time.monotonic()`` reading."""
    return time.monotonic() - since

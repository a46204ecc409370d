"""A minimal, fast HTTP/1.1 keep-alive server for the benchmarks (stdlib asyncio only).

It answers ``200 {"status":"ok"}`` to every request on any path, after reading the
``Content-Length`` bytes of its body, so it serves both our SDK (``POST
/clickstream/segmentio/event``) and Segment's (``POST /v1/batch``). It parses no JSON and
keeps no messages: its only job is never to be the bottleneck.

Options:
    ``--latency SECONDS``: answer each request that much later, without blocking other
    connections (``loop.call_later``).
    ``--stall``: read requests and never answer them (for the memory scenario).
    ``--admit K``: a rate limit, as an overloaded endpoint would apply: at most ``K``
    requests are being served at once (an admitted request occupies its slot until its
    answer is written, ``--latency`` included); a request beyond them is answered at once
    with ``429 Too Many Requests`` and ``Retry-After: S`` (``--retry-after S``, default 1).

Control endpoints, neither counted nor limited:
    ``GET /_bench/reset``: start the statistics afresh (time 0 is now).
    ``GET /_bench/stats``: JSON ``{"window": 0.1, "windows": [[mean, peak, admitted,
    rejected], ...]}``, one entry per 100 ms window since the last reset: the time-weighted
    mean and the peak of the requests being served (admitted, not yet answered), and the
    requests admitted and answered 429 in that window. Kept with or without ``--admit``.

Run it as ``python benchmarks/fastserver.py [--port N] [--latency S] [--stall] [--admit K
--retry-after S]``; it prints its port on the first line of stdout once it listens, then
serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time

_RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: 15\r\n"
    b"\r\n"
    b'{"status":"ok"}'
)
_HEADER_END = b"\r\n\r\n"
_LENGTH = b"\r\ncontent-length:"
_CONTROL = b"GET /_bench/"
WINDOW = 0.1
# At most this many windows are kept (about 3 hours of 100 ms windows).
MAX_WINDOWS = 100_000


def _content_length(head: bytes) -> int:
    lowered = head.lower()
    start = lowered.find(_LENGTH)
    if start < 0:
        return 0
    start += len(_LENGTH)
    end = lowered.find(b"\r\n", start)
    return int(lowered[start : end if end >= 0 else None].strip())


def _answer_bytes(status: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("ascii") + body


class _Window:
    """The statistics of one window while it is open."""

    __slots__ = ("admitted", "area", "peak", "rejected")

    def __init__(self, current: int) -> None:
        self.area = 0.0  # requests being served x seconds
        self.peak = current
        self.admitted = 0
        self.rejected = 0


class Gate:
    """Admission of requests (at most ``admit`` at once, when set) and their statistics.

    Counts, per ``WINDOW`` seconds since the last :meth:`reset`, the time-weighted mean and
    the peak of the requests being served, and the requests admitted and turned away.
    """

    def __init__(self, admit: int | None) -> None:
        self.admit = admit
        self._current = 0  # requests being served
        self.reset()

    def reset(self) -> None:
        """Forget the statistics; a new time 0 (the requests being served stay counted)."""
        now = time.monotonic()
        self._closed: list[tuple[float, int, int, int]] = []
        self._last = now
        self._window_ends = now + WINDOW
        self._open = _Window(self._current)

    def _advance(self, now: float) -> None:
        """Close the windows that ended before ``now``; integrate up to ``now``."""
        while now >= self._window_ends:
            window = self._open
            window.area += self._current * (self._window_ends - self._last)
            if len(self._closed) < MAX_WINDOWS:
                mean = round(window.area / WINDOW, 3)
                self._closed.append((mean, window.peak, window.admitted, window.rejected))
            self._last = self._window_ends
            self._window_ends += WINDOW
            self._open = _Window(self._current)
        self._open.area += self._current * (now - self._last)
        self._last = now

    def enter(self) -> bool:
        """Admit a request (``True``) or turn it away (``False``)."""
        self._advance(time.monotonic())
        if self.admit is not None and self._current >= self.admit:
            self._open.rejected += 1
            return False
        self._current += 1
        self._open.peak = max(self._open.peak, self._current)
        self._open.admitted += 1
        return True

    def leave(self) -> None:
        """An admitted request was answered (or its connection lost)."""
        self._advance(time.monotonic())
        self._current -= 1

    def report(self) -> bytes:
        """The windows closed so far, as JSON."""
        self._advance(time.monotonic())
        return json.dumps({"window": WINDOW, "windows": self._closed}).encode("ascii")


class _Connection(asyncio.Protocol):
    """One keep-alive connection: frames requests by Content-Length and answers each."""

    def __init__(self, latency: float, stall: bool, gate: Gate, rejection: bytes) -> None:
        self._latency = latency
        self._stall = stall
        self._gate = gate
        self._rejection = rejection
        self._control = b""
        self._buffer = bytearray()
        self._need = -1
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while True:
            if self._need < 0:
                end = buffer.find(_HEADER_END)
                if end < 0:
                    return
                head = bytes(buffer[:end])
                try:
                    self._need = _content_length(head)
                except ValueError:
                    if self._transport is not None:
                        self._transport.close()
                    return
                self._control = head.split(b" ", 2)[1] if head.startswith(_CONTROL) else b""
                del buffer[: end + len(_HEADER_END)]
            if len(buffer) < self._need:
                return
            del buffer[: self._need]
            self._need = -1
            if self._control:
                self._answer_control(self._control)
            else:
                self._answer()

    def _answer_control(self, path: bytes) -> None:
        if path == b"/_bench/reset":
            self._gate.reset()
            self._send(_RESPONSE)
        elif path == b"/_bench/stats":
            self._send(_answer_bytes("200 OK", self._gate.report()))
        else:
            self._send(_answer_bytes("404 Not Found", b'{"error":"unknown control path"}'))

    def _answer(self) -> None:
        if self._stall:
            return
        if not self._gate.enter():
            self._send(self._rejection)
        elif self._latency > 0:
            asyncio.get_running_loop().call_later(self._latency, self._finish)
        else:
            self._finish()

    def _finish(self) -> None:
        self._gate.leave()
        self._send(_RESPONSE)

    def _send(self, answer: bytes) -> None:
        if self._transport is not None:
            self._transport.write(answer)


async def serve(
    port: int, latency: float, stall: bool, admit: int | None = None, retry_after: float = 1.0
) -> None:
    """Listen on 127.0.0.1:``port``, print the bound port, and serve until cancelled."""
    loop = asyncio.get_running_loop()
    gate = Gate(admit)
    rejection = _answer_bytes(
        "429 Too Many Requests", b'{"error":"rate limited"}', f"Retry-After: {retry_after:g}\r\n"
    )
    server = await loop.create_server(
        lambda: _Connection(latency, stall, gate, rejection),
        "127.0.0.1",
        port,
        backlog=1024,
        reuse_address=True,
    )
    bound = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"{bound}\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--stall", action="store_true")
    parser.add_argument("--admit", type=int, metavar="K", help="serve at most K at once")
    parser.add_argument("--retry-after", type=float, default=1.0, metavar="S")
    args = parser.parse_args(argv)
    if args.admit is not None and args.admit < 1:
        parser.error("--admit must be at least 1")
    asyncio.run(serve(args.port, args.latency, args.stall, args.admit, args.retry_after))


if __name__ == "__main__":
    main()

"""A minimal, fast HTTP/1.1 keep-alive server for the benchmarks (stdlib asyncio only).

It answers ``200 {"status":"ok"}`` to every request on any path, after reading the
``Content-Length`` bytes of its body, so it serves both our SDK (``POST
/clickstream/segmentio/event``) and Segment's (``POST /v1/batch``). It parses no JSON and
keeps no messages: its only job is never to be the bottleneck.

Options:
    ``--latency SECONDS``: answer each request that much later, without blocking other
    connections (``loop.call_later``).
    ``--stall``: read requests and never answer them (for the memory scenario).

Run it as ``python benchmarks/fastserver.py [--port N] [--latency S] [--stall]``; it prints
its port on the first line of stdout once it listens, then serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

_RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: 15\r\n"
    b"\r\n"
    b'{"status":"ok"}'
)
_HEADER_END = b"\r\n\r\n"
_LENGTH = b"\r\ncontent-length:"


def _content_length(head: bytes) -> int:
    lowered = head.lower()
    start = lowered.find(_LENGTH)
    if start < 0:
        return 0
    start += len(_LENGTH)
    end = lowered.find(b"\r\n", start)
    return int(lowered[start : end if end >= 0 else None].strip())


class _Connection(asyncio.Protocol):
    """One keep-alive connection: frames requests by Content-Length and answers each."""

    def __init__(self, latency: float, stall: bool) -> None:
        self._latency = latency
        self._stall = stall
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
                try:
                    self._need = _content_length(bytes(buffer[:end]))
                except ValueError:
                    if self._transport is not None:
                        self._transport.close()
                    return
                del buffer[: end + len(_HEADER_END)]
            if len(buffer) < self._need:
                return
            del buffer[: self._need]
            self._need = -1
            self._answer()

    def _answer(self) -> None:
        if self._stall:
            return
        if self._latency > 0:
            asyncio.get_running_loop().call_later(self._latency, self._write)
        else:
            self._write()

    def _write(self) -> None:
        if self._transport is not None:
            self._transport.write(_RESPONSE)


async def serve(port: int, latency: float, stall: bool) -> None:
    """Listen on 127.0.0.1:``port``, print the bound port, and serve until cancelled."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Connection(latency, stall), "127.0.0.1", port, backlog=1024, reuse_address=True
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
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port, args.latency, args.stall))


if __name__ == "__main__":
    main()

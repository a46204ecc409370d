"""Whole-attempt deadlines for urllib3 connections.

Socket timeouts bound each read, not the attempt: a server trickling one byte every half
second would hold an attempt forever. Connections made by these pools wrap their socket in
one that, before every read and write, shortens its timeout to what is left of the
attempt running on this thread.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from typing import Any

import requests.adapters
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


class AttemptClock(threading.local):
    """When the attempt running on this thread must end (``None``: no attempt)."""

    deadline: float | None = None


# How far past its deadline a read or write may run (see _DeadlineSocket._arm).
SLACK = 0.1


class _DeadlineSocket:
    """A connected socket whose reads and writes end at the attempt's deadline."""

    def __init__(self, sock: Any, clock: AttemptClock) -> None:
        self._sock = sock
        self._clock = clock
        self._timeout: float | None = sock.gettimeout()  # what the connection asked for
        self._applied = self._timeout  # what the socket has now

    def _arm(self) -> None:
        deadline = self._clock.deadline
        if deadline is None:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("the attempt's timeout passed")
        applied = self._applied
        # Changing a socket's timeout is a system call: it is left alone while it cannot
        # outlast the attempt by more than SLACK, which is all a fast answer ever needs.
        if applied is not None and applied <= remaining + SLACK:
            return
        wanted = remaining if self._timeout is None else min(remaining, self._timeout)
        self._sock.settimeout(wanted)
        self._applied = wanted

    def settimeout(self, value: float | None) -> None:
        self._timeout = self._applied = value
        self._sock.settimeout(value)

    def gettimeout(self) -> float | None:
        return self._timeout

    def recv_into(self, buffer: Any, *args: Any) -> int:
        self._arm()
        return int(self._sock.recv_into(buffer, *args))

    def recv(self, size: int, *args: Any) -> bytes:
        self._arm()
        return bytes(self._sock.recv(size, *args))

    def sendall(self, data: Any, *args: Any) -> None:
        # Since Python 3.5 a socket's timeout bounds the whole sendall.
        self._arm()
        self._sock.sendall(data, *args)

    def makefile(self, mode: str = "r", buffering: int | None = None, **_: Any) -> Any:
        # http.client reads its response through makefile("rb"): route those reads here.
        return io.BufferedReader(_DeadlineReader(self), buffering or io.DEFAULT_BUFFER_SIZE)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _DeadlineReader(io.RawIOBase):
    def __init__(self, sock: _DeadlineSocket) -> None:
        super().__init__()
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._sock.recv_into(buffer)


def pool_classes(clock: AttemptClock) -> dict[str, type[HTTPConnectionPool]]:
    """Connection-pool classes whose connections end every read at ``clock``'s deadline."""

    class Connection(HTTPConnection):
        def connect(self) -> None:
            super().connect()
            self.sock = _DeadlineSocket(self.sock, clock)

    class TLSConnection(HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            self.sock = _DeadlineSocket(self.sock, clock)

    class Pool(HTTPConnectionPool):
        ConnectionCls = Connection

    class TLSPool(HTTPSConnectionPool):
        ConnectionCls = TLSConnection

    return {"http": Pool, "https": TLSPool}


class DeadlineAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter, with the deadline-keeping pools (proxied ones too)."""

    def __init__(self, pool_classes: dict[str, type[HTTPConnectionPool]], **kwargs: Any) -> None:
        self._pool_classes = pool_classes
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> urllib3.PoolManager:
        manager: urllib3.PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = self._pool_classes
        return manager

"""One HTTP exchange as the delivery engine sees it: the request, the response, and the
protocol of what makes an attempt."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Callable, Protocol

import attrs

from ._wire import ACCESS_KEY_HEADER, MAX_RESPONSE_BODY


def _masked_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name: ("****" + value[-4:] if name.lower() == ACCESS_KEY_HEADER.lower() else value)
        for name, value in headers.items()
    }


@attrs.frozen(repr=False)
class Request:
    """One HTTP request, as the delivery engine hands it to a transport.

    Attributes:
        method: ``"POST"``.
        url: The full URL, ``{endpoint}/clickstream/segmentio/event``.
        headers: The headers, the ``accessKey`` among them (masked in ``repr()``).
        body: The JSON body: one Segment message.
    """

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes

    def __repr__(self) -> str:
        return (
            f"Request({self.method!r}, {self.url!r}, headers={_masked_headers(self.headers)!r}, "
            f"body=<{len(self.body)} bytes>)"
        )


def _capped(body: bytes) -> bytes:
    return body[:MAX_RESPONSE_BODY]


@attrs.frozen
class Response:
    """What the endpoint answered to one attempt.

    Attributes:
        status: The HTTP status code.
        headers: The response headers (looked up case-insensitively by :meth:`header`).
        body: The start of the body: at most 4,096 bytes are kept (longer bodies are cut).
    """

    status: int
    headers: Mapping[str, str] = attrs.field(factory=dict)
    body: bytes = attrs.field(default=b"", converter=_capped)

    def header(self, name: str) -> str | None:
        """Return a header's value, whatever the case of its name, or ``None``.

        Args:
            name: The header's name, e.g. ``"Retry-After"``.
        """
        value = self.headers.get(name)
        if value is not None:
            return value
        lowered = name.lower()
        for key, found in self.headers.items():
            if key.lower() == lowered:
                return found
        return None


class Transport(Protocol):
    """Makes one attempt of one request; the delivery engine does everything else.

    ``send`` is called from the client's sender threads, several at once, so it must be
    thread-safe. It must return within about ``timeout`` seconds, and must not follow
    redirects (the access key must not travel to another host).
    """

    def send(self, request: Request, timeout: float) -> Response:
        """Send the request once and return the response, whatever its status.

        Args:
            request: The request.
            timeout: Seconds the whole attempt may take.

        Raises:
            TransportError: When no usable response came back (connection refused or cut,
                timeout, TLS failure, not HTTP). Any other exception is reported as a bug.
        """

    def close(self) -> None:
        """Release connections; called once when the client shuts down."""


TransportFactory = Callable[[], Transport]
"""A zero-argument callable returning a :class:`Transport` (called again after a fork)."""

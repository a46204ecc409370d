"""HTTP delivery of one message: the pooled session, retries and outcome classification."""

from __future__ import annotations

import random
import re
import threading
from typing import Any

import attrs
import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, Timeout
from urllib3.exceptions import HTTPError, InvalidHeader, MaxRetryError
from urllib3.util.retry import Retry

from ._config import Settings, mask
from ._errors import DeliveryError
from ._message import Message, TimeText
from ._version import __version__

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
USER_AGENT = f"gainsight-segment-python/{__version__}"
_BODY_EXCERPT = 200
_SCRUB_WINDOW = 4096


class _Abandoned(Exception):
    """Raised inside urllib3's retry loop when the client is shutting down."""


class _RetryControl(threading.local):
    """Per-thread retry bookkeeping shared by a transport and its Retry objects."""

    def __init__(self, interrupt: threading.Event) -> None:
        self.interrupt = interrupt
        self.retries = 0


class _Retry(Retry):
    """urllib3's Retry, with waits that a shutdown interrupts and that are counted.

    A server's ``Retry-After`` is honoured (fractional seconds too) up to ``backoff_max``;
    ``Retry-After`` alone never makes a status retryable (413 stays permanent).
    """

    RETRY_AFTER_STATUS_CODES = frozenset()
    control: _RetryControl | None = None

    def new(self, **kw: Any) -> _Retry:
        retry = super().new(**kw)
        retry.control = self.control
        return retry

    def increment(self, *args: Any, **kwargs: Any) -> _Retry:
        # Raises MaxRetryError when exhausted; getting past it means one more retry.
        retry = super().increment(*args, **kwargs)
        assert self.control is not None
        self.control.retries += 1
        return retry

    def get_backoff_time(self) -> float:
        # urllib3 waits nothing before the first retry; after an outage every sender of
        # every process would then come back at once. Jitter spreads them out.
        retries = len(self.history)
        if retries == 0:
            return 0.0
        backoff = self.backoff_factor * 2 ** (retries - 1) + random.random() * self.backoff_jitter
        return float(min(self.backoff_max, backoff))

    def parse_retry_after(self, retry_after: str) -> float:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            return super().parse_retry_after(retry_after)

    def sleep(self, response: Any = None) -> None:
        delay = None
        if self.respect_retry_after_header and response is not None:
            try:
                delay = self.get_retry_after(response)
            except InvalidHeader:
                delay = None
        if delay is None:
            delay = self.get_backoff_time()
        assert self.control is not None
        if self.control.interrupt.wait(min(delay, self.backoff_max)):
            raise _Abandoned


@attrs.frozen
class Attempt:
    """The final outcome of sending one message, retries included.

    Attributes:
        retries: How many times the message was retried.
        error: ``None`` when delivered, else why it was not.
    """

    retries: int
    error: DeliveryError | None = None

    @property
    def delivered(self) -> bool:
        """Whether the message was delivered."""
        return self.error is None


class Transport:
    """Sends messages over one pooled ``requests.Session``.

    Args:
        settings: The client's settings.
        interrupt: Set on shutdown: waits between retries stop and the message is given up.
    """

    def __init__(self, settings: Settings, interrupt: threading.Event) -> None:
        self._key = settings.access_key.secret
        self._key_pattern = re.compile(re.escape(self._key), re.IGNORECASE)
        self._control = _RetryControl(interrupt)
        self._now = TimeText()
        retry = _Retry(
            total=settings.max_retries,
            connect=settings.max_retries,
            read=settings.max_retries,
            status=settings.max_retries,
            other=0,
            redirect=0,
            allowed_methods=frozenset({"POST"}),
            status_forcelist=RETRYABLE_STATUSES,
            backoff_factor=settings.backoff_factor,
            backoff_max=settings.backoff_max,
            backoff_jitter=settings.backoff_factor,
            raise_on_status=False,
            raise_on_redirect=False,
            respect_retry_after_header=True,
        )
        retry.control = self._control
        self._retry = retry
        self.session = requests.Session()
        # Environment look-ups (proxies, netrc) on every request are slow and would let
        # the environment redirect the key; proxies are an explicit setting instead.
        self.session.trust_env = False
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=settings.workers)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        # The session's adapter picks, once, the connection pool it owns for the endpoint:
        # TLS settings and proxies as requests applies them. Each message then goes straight
        # to that pool, without requests' per-request layer, which costs more CPU than
        # urllib3's own work (and the GIL it holds is the app's too).
        template = requests.PreparedRequest()
        template.prepare(method="POST", url=settings.url)
        proxies = dict(settings.proxies)
        pool = adapter.get_connection_with_tls_context(template, settings.verify, proxies=proxies)
        assert isinstance(pool, HTTPConnectionPool)
        self._pool = pool
        self._target = adapter.request_url(template, proxies)
        self._timeout = Timeout(connect=settings.timeout, read=settings.timeout)
        self._headers = {
            "accessKey": self._key,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Accept": "*/*",
        }

    def send(self, message: Message) -> Attempt:
        """Send one message, retrying per the settings; never raises.

        Args:
            message: The message to send; ``sentAt`` is set now.

        Returns:
            Whether it was delivered, how many retries it took, and if not, why.
        """
        control = self._control
        control.retries = 0
        try:
            response = self._pool.urlopen(
                "POST",
                self._target,
                body=message.body_sent_at(self._now()),
                headers=self._headers,
                retries=self._retry,
                redirect=False,  # the key must never travel to another host
                assert_same_host=False,
                timeout=self._timeout,
                preload_content=True,
            )
        except _Abandoned:
            return self._failure(
                message, "given up at shutdown while waiting to retry", None, "", control.retries
            )
        except HTTPError as exc:
            cause = exc.reason if isinstance(exc, MaxRetryError) and exc.reason else exc
            reason = f"network error: {type(cause).__name__}: {cause}"
            return self._failure(message, reason, None, "", control.retries)
        status = response.status
        if 200 <= status < 300:
            return Attempt(control.retries)
        # Masked before it is cut, so that no part of an echoed key survives the cut.
        excerpt = self._scrub(response.data[:_SCRUB_WINDOW].decode("utf-8", "replace"))
        excerpt = excerpt[:_BODY_EXCERPT]
        if status in RETRYABLE_STATUSES:
            reason = f"HTTP {status} after {control.retries} retries"
        elif 300 <= status < 400:
            reason = f"HTTP {status}: redirects are not followed"
        else:
            reason = f"HTTP {status}: not retried"
        return self._failure(message, reason, status, excerpt, control.retries)

    def _failure(
        self, message: Message, reason: str, status: int | None, body: str, retries: int
    ) -> Attempt:
        error = DeliveryError(
            self._scrub(reason),
            status=status,
            body=self._scrub(body),
            retried=retries > 0,
            message_id=message.message_id,
        )
        return Attempt(retries, error)

    def _scrub(self, text: str) -> str:
        # A server or proxy may echo request headers back, in any case; the key must not
        # travel on.
        return self._key_pattern.sub(mask(self._key), text)

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

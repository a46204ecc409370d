"""The Client: settings, message building and an engine, tied together."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from types import TracebackType

import requests

from ._errors import ClientClosedError, ConfigurationError
from ._message import Id, Message, MessageBuilder, Properties, Timestamp, TimeText, check_event
from ._message import _id as check_id
from ._receipt import Outcome, Receipt
from ._settings import (
    DEFAULT_BACKOFF_FACTOR,
    DEFAULT_BACKOFF_MAX,
    DEFAULT_BLOCK_TIMEOUT,
    DEFAULT_ENDPOINT,
    DEFAULT_EXIT_TIMEOUT,
    DEFAULT_MAX_QUEUE_SIZE,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_WORKERS,
    DEFAULT_ON_QUEUE_FULL,
    DEFAULT_OUTBOX_MAX_MESSAGES,
    DEFAULT_TIMEOUT,
    QueueFullPolicy,
    Settings,
    Verify,
)
from ._whitelist import WhitelistSpec
from ._wire import request_headers
from .delivery._attempts import Attempts
from .delivery._callbacks import Callbacks, ErrorCallback, SuccessCallback
from .delivery._engines import DryRunEngine, Engine, SyncEngine, Transports
from .delivery._ledger import Ledger, Stats
from .delivery._policy import RetryPolicy, Scrubber
from .delivery._process import SigtermFlush
from .delivery._threaded import ThreadedEngine
from .transport import DefaultTransport, RequestsTransport, Transport, TransportFactory


class Client:
    """Sends Segment-spec ``identify``, ``track`` and ``group`` calls to Gainsight.

    Calls validate and serialize their message in the caller's thread, so mistakes raise
    there, then queue it for background delivery and return at once. Delivery problems
    never raise into the app: they go to ``on_error``, the ``gainsight_segment`` logger and
    :meth:`stats`.

    Example:
        >>> import gainsight_segment as gs
        >>> key = "35a84f9e-7084-47a1-b8a5-593444e9e862"
        >>> with gs.Client(key, send=False) as client:
        ...     client.track("123", "Account Created", {"accountId": "o283h08f"})
        ...     # doctest: +ELLIPSIS
        Receipt(message_id='...', outcome=<Outcome.DRY_RUN: 'dry_run'>, error=None)

    Args:
        access_key: The Gainsight access key (36 characters, UUID layout); read from
            ``GAINSIGHT_ACCESS_KEY`` when omitted.
        track_whitelist: See :class:`Settings`, as for every setting up to ``proxies``.
        endpoint: See :class:`Settings`.
        timeout: See :class:`Settings`.
        max_retries: See :class:`Settings`.
        backoff_factor: See :class:`Settings`.
        backoff_max: See :class:`Settings`.
        workers: See :class:`Settings`.
        max_workers: See :class:`Settings`.
        max_queue_size: See :class:`Settings`.
        on_queue_full: See :class:`Settings`.
        block_timeout: See :class:`Settings`.
        exit_timeout: See :class:`Settings`.
        sync_mode: See :class:`Settings`.
        send: See :class:`Settings`.
        verify: See :class:`Settings`.
        proxies: See :class:`Settings`.
        outbox: See :class:`Settings`.
        outbox_fsync: See :class:`Settings`.
        outbox_max_messages: See :class:`Settings`.
        on_error: Called with ``(DeliveryError, message dict)`` for every message that is
            not delivered; exceptions it raises are logged and ignored.
        on_success: Called with the message dict for every message delivered.
        builder: Builds messages; pass one with a fixed clock and ids in tests.
        transport: Makes each HTTP attempt: a
            :class:`~gainsight_segment.transport.Transport`, or a zero-argument callable
            returning one (called again in a forked child). By default a
            :class:`~gainsight_segment.transport.DefaultTransport`.
        session: A ``requests.Session`` of yours to send through (its adapters, hooks,
            CA bundle and proxies apply); set ``verify`` and proxies on it, not here.

    Attributes:
        settings: The validated settings (the key masked in its ``repr()``).

    Raises:
        ConfigurationError: When a setting is invalid; the text never shows the key.
    """

    def __init__(
        self,
        access_key: str | None = None,
        *,
        track_whitelist: WhitelistSpec = None,
        endpoint: str = DEFAULT_ENDPOINT,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_factor: float = DEFAULT_BACKOFF_FACTOR,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
        workers: int | None = None,
        max_workers: int = DEFAULT_MAX_WORKERS,
        max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE,
        on_queue_full: QueueFullPolicy = DEFAULT_ON_QUEUE_FULL,
        block_timeout: float = DEFAULT_BLOCK_TIMEOUT,
        exit_timeout: float = DEFAULT_EXIT_TIMEOUT,
        sync_mode: bool = False,
        send: bool = True,
        verify: Verify = True,
        proxies: Mapping[str, str] | None = None,
        outbox: str | os.PathLike[str] | None = None,
        outbox_fsync: bool = False,
        outbox_max_messages: int = DEFAULT_OUTBOX_MAX_MESSAGES,
        on_error: ErrorCallback | None = None,
        on_success: SuccessCallback | None = None,
        builder: MessageBuilder | None = None,
        transport: Transport | TransportFactory | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.settings = Settings(
            access_key=access_key,
            track_whitelist=track_whitelist,
            endpoint=endpoint,
            timeout=timeout,
            max_retries=max_retries,
            backoff_factor=backoff_factor,
            backoff_max=backoff_max,
            workers=workers,
            max_workers=max_workers,
            max_queue_size=max_queue_size,
            on_queue_full=on_queue_full,
            block_timeout=block_timeout,
            exit_timeout=exit_timeout,
            sync_mode=sync_mode,
            send=send,
            verify=verify,
            proxies=proxies,
            outbox=outbox,
            outbox_fsync=outbox_fsync,
            outbox_max_messages=outbox_max_messages,
        )
        self._builder = builder or MessageBuilder()
        self._whitelist = self.settings.track_whitelist
        self._engine = _engine(
            self.settings,
            Callbacks(on_error, on_success),
            _transports(self.settings, transport, session),
        )

    def __repr__(self) -> str:
        s = self.settings
        mode = "dry run" if not s.send else "sync" if s.sync_mode else "async"
        return f"<gainsight_segment.Client {s.access_key} endpoint={s.endpoint!r} {mode}>"

    def identify(
        self,
        user_id: Id | None,
        traits: Properties = None,
        *,
        anonymous_id: Id | None = None,
        context: Properties = None,
        timestamp: Timestamp = None,
        message_id: Id | None = None,
        integrations: Properties = None,
    ) -> Receipt:
        """Tell Gainsight who a user is and what their traits are.

        Put the user's Salesforce Account id in ``traits["accountId"]``.

        Args:
            user_id: The user's id; may be ``None`` when ``anonymous_id`` is given.
            traits: The user's traits.
            anonymous_id: An anonymous id for the user.
            context: Extra context; the library's name and version are added.
            timestamp: When it happened (naive datetimes are UTC); now by default.
            message_id: The message id; a fresh UUID4 by default.
            integrations: Segment's integrations object.

        Returns:
            The message id and what became of the message.

        Raises:
            InvalidMessageError: When the message cannot be built.
            ClientClosedError: When the client was shut down.
        """
        message = self._builder.identify(
            user_id,
            traits,
            anonymous_id=anonymous_id,
            context=context,
            timestamp=timestamp,
            message_id=message_id,
            integrations=integrations,
        )
        return self._submit(message)

    def track(
        self,
        user_id: Id | None,
        event: str,
        properties: Properties = None,
        *,
        anonymous_id: Id | None = None,
        context: Properties = None,
        timestamp: Timestamp = None,
        message_id: Id | None = None,
        integrations: Properties = None,
    ) -> Receipt:
        """Record that a user did something.

        Only events in the track whitelist are sent (all of them when it is empty);
        the others return a ``FILTERED`` receipt. Put the user's Salesforce Account id in
        ``properties["accountId"]``.

        Args:
            user_id: The user's id; may be ``None`` when ``anonymous_id`` is given.
            event: The event's name, e.g. ``"Account Created"``.
            properties: The event's properties.
            anonymous_id: An anonymous id for the user.
            context: Extra context; the library's name and version are added.
            timestamp: When it happened (naive datetimes are UTC); now by default.
            message_id: The message id; a fresh UUID4 by default.
            integrations: Segment's integrations object.

        Returns:
            The message id and what became of the message.

        Raises:
            InvalidMessageError: When the message cannot be built. A track the whitelist
                skips is not built, so only its event name is checked.
            ClientClosedError: When the client was shut down.
        """
        ledger = self._engine.ledger
        if ledger.closed:
            raise ClientClosedError("the client was shut down; create a new Client")
        if not self._whitelist.allows(check_event(event)):
            # Skipped before anything is built: most apps skip most of their events.
            ledger.count_filtered()
            skipped_id = (
                self._builder.new_id() if message_id is None else check_id("messageId", message_id)
            )
            return Receipt(skipped_id, Outcome.FILTERED)
        message = self._builder.track(
            user_id,
            event,
            properties,
            anonymous_id=anonymous_id,
            context=context,
            timestamp=timestamp,
            message_id=message_id,
            integrations=integrations,
        )
        return self._submit(message)

    def _submit(self, message: Message) -> Receipt:
        return self._engine.submit(message)

    def group(
        self,
        user_id: Id | None,
        group_id: Id,
        traits: Properties = None,
        *,
        anonymous_id: Id | None = None,
        context: Properties = None,
        timestamp: Timestamp = None,
        message_id: Id | None = None,
        integrations: Properties = None,
    ) -> Receipt:
        """Associate a user with a group, typically the Salesforce Account ``group_id``.

        Args:
            user_id: The user's id; may be ``None`` when ``anonymous_id`` is given.
            group_id: The group's id (mapped to the Salesforce Account).
            traits: The group's traits, e.g. ``{"name": "Twitter"}``.
            anonymous_id: An anonymous id for the user.
            context: Extra context; the library's name and version are added.
            timestamp: When it happened (naive datetimes are UTC); now by default.
            message_id: The message id; a fresh UUID4 by default.
            integrations: Segment's integrations object.

        Returns:
            The message id and what became of the message.

        Raises:
            InvalidMessageError: When the message cannot be built.
            ClientClosedError: When the client was shut down.
        """
        message = self._builder.group(
            user_id,
            group_id,
            traits,
            anonymous_id=anonymous_id,
            context=context,
            timestamp=timestamp,
            message_id=message_id,
            integrations=integrations,
        )
        return self._submit(message)

    def flush(self, timeout: float | None = None) -> bool:
        """Block until every message queued so far is delivered or given up.

        Args:
            timeout: Seconds to wait at most, retries included; ``None`` waits until
                delivery ends (each message ends within its retries and timeouts).

        Returns:
            ``True`` if everything settled in time; ``False`` if the deadline passed, in
            which case the rest stays queued and :meth:`stats` shows how much. Called from
            ``on_error`` or ``on_success`` (or a transport), it returns ``False`` at once:
            the message whose callback runs cannot settle while it waits.
        """
        return self._engine.flush(timeout)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush, then stop the sender threads and close connections. Idempotent.

        Messages still queued or in flight when the deadline passes are reported to
        ``on_error`` and counted as dropped or failed; a call waiting for room in a full
        queue is woken, its message dropped. Later ``identify``, ``track`` and ``group``
        calls raise :class:`ClientClosedError`; ``flush`` returns at once. If any message
        was not delivered, one warning logs the totals by kind.

        Args:
            timeout: Seconds for the whole shutdown; ``None`` waits until delivery ends.

        Returns:
            ``True`` if every message was delivered or given up (and reported) before the
            deadline; ``False`` if the deadline cut delivery short. A later or concurrent
            call waits for the first one (within its own deadline) and returns its answer;
            a call from ``on_error`` or ``on_success`` returns ``False`` at once, leaving
            the waiting to another call or the exit flush.
        """
        return self._engine.shutdown(timeout)

    def flush_on_sigterm(self) -> None:
        """On SIGTERM, deliver what is queued (within ``exit_timeout``), then let it go on.

        Containers, systemd and PaaS stop processes with SIGTERM, which ends a Python
        process at once by default, before the exit flush runs. After this call, SIGTERM
        first flushes the client, then does what it did before: ends the process (the
        default), or calls the handler already installed (a framework's), which is
        chained, not replaced. Call it once, from the main thread, after any handler of
        your own is installed.

        Raises:
            ConfigurationError: When called from another thread than the main one.
        """
        self._sigterm = SigtermFlush(self.flush, self.settings.exit_timeout)

    def stats(self) -> Stats:
        """Return a snapshot of the counters; see :class:`Stats`."""
        return self._engine.stats()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()


def _transports(
    settings: Settings,
    transport: Transport | TransportFactory | None,
    session: requests.Session | None,
) -> Transports | None:
    """What the engine sends through; ``None`` for a dry run."""
    if transport is not None and session is not None:
        raise ConfigurationError("transport, session: pass one or the other, not both")
    if session is not None:
        if not isinstance(session, requests.Session):
            raise ConfigurationError(
                f"session: must be a requests.Session, got {type(session).__name__}"
            )
        if settings.verify is not True or settings.proxies:
            raise ConfigurationError(
                "verify, proxies: set them on your session (session.verify, "
                "session.proxies) rather than on the client"
            )
    if transport is not None and not (hasattr(transport, "send") or callable(transport)):
        raise ConfigurationError(
            "transport: must be a Transport (with send() and close()) or a zero-argument "
            f"callable returning one, got {type(transport).__name__}"
        )
    if not settings.send:
        return None
    if session is not None:
        return Transports(functools.partial(RequestsTransport, session))
    if transport is None:
        return Transports(
            functools.partial(
                DefaultTransport,
                verify=settings.verify,
                proxies=settings.proxies,
                pool_size=settings.senders,
            )
        )
    if hasattr(transport, "send") and not isinstance(transport, type):
        return Transports(None, transport)  # type: ignore[arg-type]
    return Transports(transport)


def _engine(settings: Settings, callbacks: Callbacks, transports: Transports | None) -> Engine:
    ledger = Ledger()
    if transports is None:
        return DryRunEngine(ledger)
    attempts = Attempts(
        url=settings.url,
        headers=request_headers(settings.access_key.secret),
        timeout=settings.timeout,
        policy=RetryPolicy(settings.max_retries, settings.backoff_factor, settings.backoff_max),
        scrub=Scrubber(settings.access_key.secret),
        sent_at=TimeText(),
    )
    if settings.sync_mode:
        return SyncEngine(transports, attempts, ledger, callbacks)
    if settings.outbox is not None:
        # Imported here: sqlite3 is loaded only by clients that have an outbox.
        from .outbox._engine import OutboxEngine

        return OutboxEngine(settings, transports, attempts, ledger, callbacks)
    return ThreadedEngine(settings, transports, attempts, ledger, callbacks)

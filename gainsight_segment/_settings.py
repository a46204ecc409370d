"""Settings: access key, whitelist, endpoint, timeouts and delivery options, validated once."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal, Union
from urllib.parse import urlsplit

import attrs

from ._errors import ConfigurationError
from ._whitelist import TrackWhitelist, WhitelistSpec
from ._wire import event_url

QueueFullPolicy = Literal["drop", "block"]

ACCESS_KEY_ENV = "GAINSIGHT_ACCESS_KEY"
DEFAULT_ENDPOINT = "https://event.gainsight.com"
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_BACKOFF_FACTOR = 0.5
DEFAULT_BACKOFF_MAX = 30.0
DEFAULT_MAX_WORKERS = 32
DEFAULT_MAX_QUEUE_SIZE = 100_000
DEFAULT_ON_QUEUE_FULL: QueueFullPolicy = "drop"
DEFAULT_BLOCK_TIMEOUT = 1.0
DEFAULT_EXIT_TIMEOUT = 5.0
DEFAULT_OUTBOX_MAX_MESSAGES = 1_000_000

_UUID_LAYOUT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_LOOPBACK_NAMES = frozenset({"localhost"})
# Labels of letters, digits, hyphens and (seen in practice, accepted by HTTP libraries)
# underscores, separated by single dots.
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")

Verify = Union[bool, str]


def mask(secret: str) -> str:
    """Return the masked form of a secret that is safe to show: ``****`` and its last 4.

    Args:
        secret: The secret to mask.

    Returns:
        ``"****"`` followed by the secret's last four characters.
    """
    return "****" + secret[-4:]


@attrs.frozen(repr=False)
class AccessKey:
    """A validated Gainsight access key that never shows itself.

    ``str()`` and ``repr()`` give the masked form ``****e862``; the key itself is only
    available as :attr:`secret`, for the request header.

    Attributes:
        secret: The key, exactly 36 characters in UUID layout.
    """

    secret: str

    @classmethod
    def parse(cls, value: object) -> AccessKey:
        """Validate an access key, falling back to ``GAINSIGHT_ACCESS_KEY`` when ``None``.

        Args:
            value: The key as given, or ``None`` to read the environment variable.

        Returns:
            The validated key, surrounding whitespace stripped.

        Raises:
            ConfigurationError: When the key is missing, not a string, not 36 characters
                long or not in UUID layout. The text never contains the key.
        """
        if isinstance(value, AccessKey):
            return value
        source = "access_key"
        if value is None:
            value = os.environ.get(ACCESS_KEY_ENV)
            source = ACCESS_KEY_ENV
            if value is None:
                raise ConfigurationError(
                    f"access_key: missing; pass it to Client or set {ACCESS_KEY_ENV}"
                )
        if not isinstance(value, str):
            raise ConfigurationError(f"{source}: must be a string, got {type(value).__name__}")
        key = value.strip()
        if not key:
            raise ConfigurationError(f"{source}: is empty")
        if len(key) != 36:
            raise ConfigurationError(
                f"{source}: must be 36 characters long, got {len(key)} characters"
            )
        if not _UUID_LAYOUT.fullmatch(key):
            raise ConfigurationError(
                f"{source}: must be in UUID layout (8-4-4-4-12 hexadecimal digits)"
            )
        return cls(key)

    def __repr__(self) -> str:
        return f"AccessKey({mask(self.secret)!r})"

    __str__ = __repr__


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        # Internationalized names are sent in their ASCII (IDNA) form, as requests sends them.
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return _HOST_NAME.fullmatch(ascii_host) is not None


def _with_scheme(url: str) -> str:
    try:
        host = urlsplit("//" + url).hostname or ""
    except ValueError:
        host = ""
    return ("http://" if _is_loopback(host) else "https://") + url


def normalize_endpoint(value: object) -> str:
    """Validate an endpoint base URL and return it without trailing slashes.

    Args:
        value: The base URL, e.g. ``https://event.gainsight.com``.

    Returns:
        The URL without trailing slashes.

    Raises:
        ConfigurationError: Unless it is an ``https://`` URL with a valid host, or an
            ``http://`` URL to a loopback host; white space, control characters,
            credentials, queries and fragments are refused too.
    """
    if not isinstance(value, str):
        raise ConfigurationError(f"endpoint: must be a string, got {type(value).__name__}")
    url = value.strip().rstrip("/")
    # urlsplit silently drops tabs and line breaks, and keeps spaces and NULs in the host;
    # any of them would only fail later, in the HTTP library, with its own error.
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in url):
        raise ConfigurationError("endpoint: must not contain white space or control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - parsing the port validates it
    except ValueError as exc:
        raise ConfigurationError(f"endpoint: not a valid URL ({exc})") from None
    if "://" not in url and not url.endswith(":"):
        raise ConfigurationError(
            f"endpoint: has no scheme; write it as {_with_scheme(url)!r} "
            "(https://, or http:// for a loopback host)"
        )
    if parts.scheme not in ("https", "http"):
        raise ConfigurationError(
            f"endpoint: must start with https:// (got scheme {parts.scheme or 'none'!r})"
        )
    if not host:
        raise ConfigurationError("endpoint: has no host")
    if not _valid_host(host):
        raise ConfigurationError(f"endpoint: {host!r} is not a valid host name or address")
    if parts.scheme == "http" and not _is_loopback(host):
        raise ConfigurationError(
            "endpoint: http:// is only allowed for loopback hosts; use https://"
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError("endpoint: must not contain credentials")
    # An empty "?" or "#" parses as no query, yet would swallow the event path appended later.
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise ConfigurationError("endpoint: must not have a query or fragment")
    return url


# Upper bounds keep every setting within what threads, sockets and timed waits can take
# (threading.TIMEOUT_MAX is far above a day) and every error text printable.
_MAX_SECONDS = 86_400.0
_MAX_COUNTS = {
    "max_retries": 100,
    "workers": 256,
    "max_workers": 256,
    "max_queue_size": 10_000_000,
    "outbox_max_messages": 1_000_000_000,
}


def _shown(value: float) -> str:
    # Ints of thousands of digits cannot even be formatted; no sane setting is that long.
    return str(value) if -1e15 < value < 1e15 else "a number that large"


def _seconds(name: str, value: object, *, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{name}: must be a number, got {type(value).__name__}")
    if value != value or value in (float("inf"), float("-inf")):
        raise ConfigurationError(f"{name}: must be finite")
    if value < 0 or (value == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "greater than zero"
        raise ConfigurationError(f"{name}: must be {bound}, got {_shown(value)}")
    if value > _MAX_SECONDS:
        raise ConfigurationError(
            f"{name}: must be at most {_MAX_SECONDS:.0f} seconds, got {_shown(value)}"
        )


def _check_positive(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _seconds(attribute.name, value)


def _check_non_negative(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _seconds(attribute.name, value, allow_zero=True)


def _check_count(minimum: int, *, optional: bool = False) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        name = attribute.name
        if optional and value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigurationError(f"{name}: must be an integer, got {type(value).__name__}")
        if value < minimum:
            raise ConfigurationError(f"{name}: must be at least {minimum}, got {_shown(value)}")
        if value > _MAX_COUNTS[name]:
            raise ConfigurationError(
                f"{name}: must be at most {_MAX_COUNTS[name]}, got {_shown(value)}"
            )

    return check


def _check_workers(instance: Settings, attribute: attrs.Attribute[Any], value: object) -> None:
    # The type first: comparing any object with 0 may raise (a signaling NaN Decimal does).
    if isinstance(value, int) and not isinstance(value, bool) and value == 0:
        if instance.outbox is not None:
            return  # write-only: a relay delivers from the outbox
        raise ConfigurationError(
            "workers: 0 (write only, a relay delivers) needs an outbox: pass outbox=PATH"
        )
    _check_count(1, optional=True)(instance, attribute, value)


def _outbox_path(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigurationError(f"outbox: must be a file path, got {type(value).__name__}")
    path = os.fspath(value)
    if not isinstance(path, str) or not path or "\x00" in path:
        raise ConfigurationError("outbox: must be a non-empty file path")
    return path


def _check_outbox(instance: Settings, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if instance.sync_mode:
        raise ConfigurationError(
            "outbox: sync_mode sends in the caller's thread; use one or the other"
        )
    if not instance.send:
        raise ConfigurationError("outbox: send=False never sends; an outbox would only fill up")


def _check_policy(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in ("drop", "block"):
        raise ConfigurationError(f"on_queue_full: must be 'drop' or 'block', got {value!r}")


def _check_verify(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, (bool, str)):
        raise ConfigurationError("verify: must be True, False or a CA bundle path")
    # Caught here, not as a failure of every message once the client runs.
    if isinstance(value, str) and not os.path.exists(value):
        raise ConfigurationError(f"verify: no CA bundle at {value!r}")


def _check_proxies(instance: Settings, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigurationError("proxies: must be a mapping of scheme to proxy URL strings")
    plain_http = instance.endpoint.startswith("http://")
    for scheme, url in value.items():
        try:
            parts = urlsplit(url)
            proxy_scheme, host = parts.scheme, parts.hostname
        except ValueError:
            proxy_scheme, host = "", None
        if proxy_scheme not in ("http", "https") or not host:
            raise ConfigurationError(
                f"proxies[{scheme!r}]: must be an http:// or https:// URL with a host"
            )
        # A plain-HTTP request goes to its proxy in clear text, access key included; that is
        # only acceptable when the proxy, like the endpoint, is on this machine.
        applies = scheme in ("http", "all") or scheme.startswith(("http://", "all://"))
        if plain_http and applies and not _is_loopback(host):
            raise ConfigurationError(
                f"proxies[{scheme!r}]: an http:// endpoint would send the access key in clear "
                f"text to the proxy {host!r}; use a loopback proxy, or no proxy"
            )


def _show_proxies(value: Mapping[str, str]) -> str:
    # A proxy URL may carry credentials: show where it goes, never who logs in.
    shown = {scheme: re.sub(r"//[^@/]*@", "//****@", url) for scheme, url in value.items()}
    return repr(shown)


def _check_bool(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigurationError(
            f"{attribute.name}: must be True or False, got {type(value).__name__}"
        )


def _freeze_proxies(value: Mapping[str, str] | None) -> Mapping[str, str]:
    # A read-only copy: the caller's dict must not change a frozen Settings later.
    return (
        MappingProxyType(dict(value or {}))
        if isinstance(value, Mapping) or value is None
        else value
    )


def _parse_access_key(value: object) -> AccessKey:
    return AccessKey.parse(value)


def _parse_whitelist(value: WhitelistSpec) -> TrackWhitelist:
    return TrackWhitelist.from_spec(value)


@attrs.frozen(kw_only=True)
class Settings:
    """Every setting of a :class:`Client`, validated once when the client is created.

    Attributes:
        access_key: The Gainsight access key (masked in ``repr()``); read from
            ``GAINSIGHT_ACCESS_KEY`` when not given.
        track_whitelist: The track events that are sent; empty sends every track.
        endpoint: Base URL of the Gainsight event endpoint, without trailing slash.
        timeout: Seconds one attempt may take, from connecting to the last byte of the
            answer (through a ``session`` of yours: for the connection and each read).
        max_retries: Retries after the first attempt for retryable failures.
        backoff_factor: Base of the exponential backoff between retries, in seconds.
        backoff_max: Longest wait between two attempts, ``Retry-After`` included.
        workers: A fixed number of sender threads; ``None`` (the default) lets the
            number follow the backlog, from none when idle up to ``max_workers``; ``0``,
            with an ``outbox``, only writes (a relay process delivers).
        max_workers: The most sender threads, i.e. requests in flight at once, when
            ``workers`` is ``None``.
        max_queue_size: Messages that may wait in the queue for a sender.
        on_queue_full: ``"drop"`` the new message (counted and reported) or ``"block"``
            the caller for up to ``block_timeout`` seconds, then drop.
        block_timeout: Longest wait of a blocked caller when ``on_queue_full="block"``.
        exit_timeout: Seconds the interpreter's exit waits for queued messages;
            ``0`` turns the exit flush off.
        sync_mode: Send in the caller's thread instead of in the background.
        send: ``False`` builds and validates messages but never sends them (dry run).
        verify: TLS verification: ``True``, ``False`` or a CA bundle path.
        proxies: Explicit proxies by scheme; environment proxies are not read.
        outbox: Path of an SQLite file messages are delivered from. Each call writes its
            message to the process's spool file beside it (``PATH.spool/``) before it
            returns; senders move it into the file. Messages survive a crash, a kill and a
            restart. ``None`` (the default) keeps them in memory.
        outbox_fsync: Sync each write to the disk, so that messages also survive a power
            loss (at the cost of a disk flush per call); without it a message survives
            any end of the process, the OS keeping what was written.
        outbox_max_messages: Messages the outbox may hold; ``on_queue_full`` says what
            happens to a message that finds it full.
    """

    access_key: AccessKey = attrs.field(default=None, converter=_parse_access_key)
    track_whitelist: TrackWhitelist = attrs.field(default=None, converter=_parse_whitelist)
    endpoint: str = attrs.field(default=DEFAULT_ENDPOINT, converter=normalize_endpoint)
    timeout: float = attrs.field(default=DEFAULT_TIMEOUT, validator=_check_positive)
    max_retries: int = attrs.field(default=DEFAULT_MAX_RETRIES, validator=_check_count(0))
    backoff_factor: float = attrs.field(
        default=DEFAULT_BACKOFF_FACTOR, validator=_check_non_negative
    )
    backoff_max: float = attrs.field(default=DEFAULT_BACKOFF_MAX, validator=_check_non_negative)
    workers: int | None = attrs.field(default=None, validator=_check_workers)
    max_workers: int = attrs.field(default=DEFAULT_MAX_WORKERS, validator=_check_count(1))
    max_queue_size: int = attrs.field(default=DEFAULT_MAX_QUEUE_SIZE, validator=_check_count(1))
    on_queue_full: QueueFullPolicy = attrs.field(
        default=DEFAULT_ON_QUEUE_FULL, validator=_check_policy
    )
    block_timeout: float = attrs.field(default=DEFAULT_BLOCK_TIMEOUT, validator=_check_non_negative)
    exit_timeout: float = attrs.field(default=DEFAULT_EXIT_TIMEOUT, validator=_check_non_negative)
    sync_mode: bool = attrs.field(default=False, validator=_check_bool)
    send: bool = attrs.field(default=True, validator=_check_bool)
    verify: Verify = attrs.field(default=True, validator=_check_verify)
    proxies: Mapping[str, str] = attrs.field(
        factory=dict, converter=_freeze_proxies, validator=_check_proxies, repr=_show_proxies
    )
    outbox: str | None = attrs.field(default=None, converter=_outbox_path, validator=_check_outbox)
    outbox_fsync: bool = attrs.field(default=False, validator=_check_bool)
    outbox_max_messages: int = attrs.field(
        default=DEFAULT_OUTBOX_MAX_MESSAGES, validator=_check_count(1)
    )

    @property
    def url(self) -> str:
        """The full URL messages are posted to."""
        return event_url(self.endpoint)

    @property
    def senders(self) -> int:
        """The most sender threads: ``workers`` when fixed, else ``max_workers``."""
        return self.max_workers if self.workers is None else self.workers

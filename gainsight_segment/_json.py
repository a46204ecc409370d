"""A message's JSON: convert what JSON lacks, serialize strictly, say where a value fails.

Pure: no I/O. The C encoder does the work on the common path. A Python walk over the payload
runs only when the encoder fails, or when a cheap look at its output sees something the
encoder cannot refuse (a ``None`` key, keys that collide once written as strings, nesting past
the limit); the walk then names the field.

Values come from the caller and may be hostile: a ``Mapping`` whose iteration raises, a
``dict`` subclass whose ``items()`` lies, a ``tzinfo`` that returns nonsense, a key whose
``repr()`` raises. Whatever they do, the result is an :class:`InvalidMessageError` naming the
field, never their own exception (a ``MemoryError`` included: a lying ``__len__`` can fake
one). Only what is not an ``Exception`` at all, such as ``KeyboardInterrupt``, passes through.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Any, Callable
from uuid import UUID

from ._errors import InvalidMessageError

MAX_MESSAGE_BYTES = 32 * 1024
_MAX_DEPTH = 200
# A longer chain of conversions (an Enum whose value is an Enum ...) is taken to be endless.
_MAX_CONVERSIONS = _MAX_DEPTH
_MAX_REASON = 200


def format_time(value: date) -> str:
    """Format a date or datetime as UTC ISO-8601 with milliseconds and ``Z``.

    Naive datetimes are taken as UTC; a date is midnight UTC.

    Args:
        value: The date or datetime.

    Returns:
        A string like ``2014-05-05T08:00:00.000Z``.
    """
    if isinstance(value, datetime):
        if value.tzinfo is not None and value.utcoffset():
            value = value.astimezone(timezone.utc)
        return (
            f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:"
            f"{value.minute:02d}:{value.second:02d}.{value.microsecond // 1000:03d}Z"
        )
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}T00:00:00.000Z"


def _to_json(value: Any) -> Any:
    """Convert one value the JSON encoder does not know natively."""
    if isinstance(value, (datetime, date)):
        return format_time(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not valid JSON")
        if value != value.to_integral_value():
            return float(value)
        # int() of a Decimal like 1E+1000000 takes minutes; no such number fits a message.
        if value.adjusted() >= MAX_MESSAGE_BYTES:
            raise ValueError(f"Decimal with {value.adjusted() + 1} digits is too large")
        return int(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        # list() trusts a subclass's __len__ to size the list; a lie costs a MemoryError.
        exact = type(value) in (set, frozenset)
        return list(value) if exact else [item for item in value]  # noqa: C416
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _make_encode() -> Callable[[Any], str]:
    """Return the fastest compact, strict JSON encoding function this Python has.

    ``JSONEncoder.encode`` builds a new C encoder on every call; building it once saves
    most of the cost for a small message. No circular-reference bookkeeping: a cycle ends
    in ``RecursionError``, and the slow path then says where it is.
    """
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_make_encoder is not None:
        try:
            encoder = c_make_encoder(
                None, _to_json, json.encoder.encode_basestring, None, ":", ",", False, False, False
            )
        except TypeError:  # pragma: no cover - a C encoder with another signature
            pass
        else:
            return lambda value: "".join(encoder(value, 0))
    fallback = json.JSONEncoder(  # pragma: no cover - Pythons without the C encoder
        ensure_ascii=False,
        allow_nan=False,
        check_circular=False,
        separators=(",", ":"),
        default=_to_json,
    )
    return fallback.encode  # pragma: no cover


_encode = _make_encode()


def error_reason(error: BaseException) -> str:
    """Say in a line what an exception raised by the caller's objects means.

    Never raises, even for an exception whose ``str()`` raises. Type, value and overflow
    errors speak for themselves (ours among them); any other is named by its type.
    """
    try:
        text = str.__str__(str(error))
    except Exception:  # its __str__ raises or returns a non-string
        text = ""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) > _MAX_REASON:
        text = text[: _MAX_REASON - 3] + "..."
    if issubclass(type(error), (TypeError, ValueError, OverflowError)) and text:
        return text
    name = type(error).__name__
    return f"{name}: {text}" if text else name


class _Problem(Exception):
    """Raised by the walk's helpers with the finished ``path: reason`` text."""


def _printable(key: Any) -> str:
    """Show a key in a field path: itself if a clean string, else its ``repr()``."""
    if issubclass(type(key), str):
        text = str.__str__(key)
        if _scalar_problem(text) is None:
            return text
    try:
        shown = str.__str__(repr(key))
    except Exception:  # an int over sys.get_int_max_str_digits(), a raising __repr__, ...
        return f"<{type(key).__name__}>"
    # A repr of our own escapes lone surrogates; a custom one may not.
    return shown.encode("utf-8", "backslashreplace").decode("utf-8")


def _child_path(path: str, key: Any) -> str:
    text = _printable(key)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{path}.{text}" if path else text


def _scalar_problem(value: Any) -> str | None:
    # Checked by type, and through the base classes' own methods, as the C encoder does:
    # a subclass's overrides neither change what is written nor get a chance to raise.
    kind = type(value)
    if issubclass(kind, float):
        if not math.isfinite(value):
            return f"{'NaN' if math.isnan(value) else 'Infinity'} is not valid JSON"
    elif issubclass(kind, str):
        try:
            str.encode(value, "utf-8")
        except UnicodeEncodeError:
            return "contains a lone surrogate, which is not valid Unicode"
    elif issubclass(kind, int) and kind is not bool:
        try:
            int.__repr__(value)
        except ValueError:  # over sys.get_int_max_str_digits()
            return "integer has too many digits to serialize"
    return None


def _key_text(path: str, key: Any) -> str:
    """Return a key as the encoder writes it, or raise :class:`_Problem` naming it."""
    if key is True or key is False:
        return "true" if key else "false"
    kind = type(key)
    problem: str | None
    if key is None or not issubclass(kind, (str, int, float)):
        problem = f"keys must be str, int, float or bool, not {kind.__name__}"
    else:
        problem = _scalar_problem(key)
    if problem:
        raise _Problem(f"{_child_path(path, key)}: {problem}")
    if issubclass(kind, str):
        return str.__str__(key)
    return (int.__repr__ if issubclass(kind, int) else float.__repr__)(key)


def _native(value: Any) -> Any:
    """Convert a value as the encoder's default hook does, until JSON knows its type."""
    for _ in range(_MAX_CONVERSIONS):
        if value is None or issubclass(type(value), (str, int, float, dict, list, tuple)):
            return value
        value = _to_json(value)
    raise ValueError(f"still not JSON after {_MAX_CONVERSIONS} conversions")


def _members(path: str, value: dict[Any, Any]) -> list[tuple[str, Any]]:
    """Return a dict's members as the encoder writes them, checking each key."""
    # The encoder reads a dict subclass through its items(), and so does the walk.
    items = dict.items(value) if type(value) is dict else value.items()
    members = []
    seen: set[str] = set()
    for item in items:
        if not issubclass(type(item), tuple) or tuple.__len__(item) != 2:
            raise _Problem(
                f"{path}: items() must give (key, value) pairs, got {type(item).__name__}"
            )
        key, child = tuple.__getitem__(item, 0), tuple.__getitem__(item, 1)
        text = _key_text(path, key)
        if text in seen:
            raise _Problem(f"{_child_path(path, text)}: duplicate key once converted to a string")
        seen.add(text)
        members.append((_child_path(path, key), child))
    return members


def _visit(
    path: str, value: Any, depth: int, on_path: set[int]
) -> tuple[Any, list[tuple[str, Any]] | None]:
    """Check one value; return it as the encoder sees it, and its children if a container.

    Raises:
        _Problem: Where and why it is not JSON.
        Exception: Whatever the caller's objects raised; the walk names the path.
    """
    value = _native(value)
    kind = type(value)
    if value is None or issubclass(kind, (str, int, float)):
        problem = _scalar_problem(value)
        if problem:
            raise _Problem(f"{path}: {problem}")
        return value, None
    if depth >= _MAX_DEPTH:
        raise _Problem(f"{path}: nested more than {_MAX_DEPTH} levels deep")
    if id(value) in on_path:
        raise _Problem(f"{path}: circular reference")
    if issubclass(kind, dict):
        return value, _members(path, value)
    return value, [(f"{path}[{index}]", child) for index, child in enumerate(value)]


def _first_problem(payload: Mapping[str, Any]) -> str | None:
    """Return where and why the payload is not JSON, or ``None`` when it is.

    Iterative, so that very deep nesting cannot exhaust the caller's stack. It reads
    containers as the encoder does, so it finds what made the encoder fail, and checks
    what the encoder does not: ``None`` keys, colliding keys, depth.
    """
    stack: list[tuple[str, Any, int]] = [("", payload, 0)]
    on_path: set[int] = set()
    # Each container on the path is held here too: one converted from a Mapping or a set
    # exists nowhere else, and once freed its id could come back for another.
    exits: list[tuple[int, int, Any]] = []
    while stack:
        path, value, depth = stack.pop()
        while exits and exits[-1][0] >= depth:
            on_path.discard(exits.pop()[1])
        try:
            value, children = _visit(path, value, depth, on_path)
        except _Problem as problem:
            return str(problem)
        except Exception as error:
            return f"{path}: {error_reason(error)}"
        if children is not None:
            on_path.add(id(value))
            exits.append((depth, id(value), value))
            stack.extend((child_path, child, depth + 1) for child_path, child in reversed(children))
    return None


# One translation of the body shows, in a few searches, keys that are not strings: digits
# and '-' become '0', so a key written from a number ends in '0":' (and starts with '0');
# 't', 'a' and 'n' become 't', 'r', 'u', 'e', 'l' and 's' become 'r', and 'f' becomes '"',
# so the keys "true", "false" and "null" (written from True, False and None) all contain
# '"trrr":'.
_MARKS = bytes.maketrans(b"-0123456789tanruelsf", b"00000000000tttrrrrr" + b'"')
_NUMBER_KEY_END = b'0":'
_NUMBER_KEY_AFTER_COMMA = b',"0'
_WORD_KEY = b'"trrr":'
_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_MARKS = bytes(b for b in range(256) if b not in b'"[]{}')


def _too_deep(body: bytes, limit: int = _MAX_DEPTH) -> bool:
    """Tell exactly whether the containers of a body we encoded nest more than ``limit`` deep.

    Brackets inside strings do not count. Our encoder's output is valid JSON whose strings
    escape with a backslash only ``\\\\``, ``\\"`` and letters, so once the first two are
    gone (left to right, as a parser pairs them) every quote left opens or closes a string.
    All in C: a few passes over the body, then over its quotes and brackets only.
    """
    if body.find(b"\\") >= 0:  # one byte: a fast search, and most bodies have no escapes
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    marks = body.translate(_BRACKETS, _NOT_MARKS)
    # Two quotes in a row are an empty string or the gap between two strings: dropping them
    # keeps every bracket on its side, and leaves only strings that hold brackets.
    marks = marks.replace(b'""', b"")
    if b'"' in marks:
        marks = b"".join(marks.split(b'"')[::2])
    for _ in range(limit):
        # Each pass removes the innermost pairs, that is exactly one level.
        marks = marks.replace(b"[]", b"")
        if not marks:
            return False
    return bool(marks)


class _Duplicate(Exception):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> None:
    if len(pairs) > 1 and len({key for key, _ in pairs}) < len(pairs):
        raise _Duplicate


def _has_duplicate_key(body: bytes) -> bool | None:
    """Tell whether an object of the body repeats a key; ``None`` when it cannot tell."""
    try:
        json.loads(body, object_pairs_hook=_unique_pairs)
    except _Duplicate:
        return True
    except RecursionError:  # the caller's stack was nearly full already: the walk decides
        return None
    return False


def _unnoticed_problem(body: bytes, many_brackets: bool, key_like: bool) -> str | None:
    """Say exactly what the encoder let through that a message must not have.

    Returns:
        The problem, to report if the walk cannot place it; ``""`` when only the walk can
        tell (a ``"null"`` key is fine, a ``None`` key is not); ``None`` for none.
    """
    if many_brackets and _too_deep(body):
        return f"message: nested more than {_MAX_DEPTH} levels deep"
    if key_like:
        duplicate = _has_duplicate_key(body)
        if duplicate:
            return "message: duplicate key once converted to a string"
        if duplicate is None or b'"null":' in body:
            return ""
    return None


def _str_keys_only(mappings: Sequence[dict[Any, Any]]) -> bool:
    # A plain loop: for the few keys of most messages it beats every C-level trick tried
    # (str.join, set(map(type, ...)), all(map(...))).
    for mapping in mappings:
        if type(mapping) is not dict:  # whose iteration could raise, or lie
            return False
        for key in mapping:
            if type(key) is not str:
                return False
    return True


def serialize(
    payload: Mapping[str, Any], *, own: int = 0, foreign: Sequence[dict[Any, Any]] = ()
) -> bytes:
    """Serialize a payload as compact UTF-8 JSON, converting what JSON lacks.

    What the encoder does not refuse is looked for in its output: ``None`` keys, keys that
    collide once written as strings (``1`` and ``"1"``, ``True`` and ``"true"``, ``1.0``
    and ``"1.0"``) and nesting past 200 levels.

    * A body with no more brackets than the containers its caller made (``own`` and
      ``foreign``) holds no other container; if the ``foreign`` dicts have only ``str``
      keys, it has neither odd keys nor depth. This costs two counts of the text, in C,
      and a look at the type of those keys: the common case of flat data.
    * Otherwise a translation and two or three searches of the body, in C, tell whether
      any key is written like a number, ``true``, ``false`` or ``null``. Keys of a dict are
      distinct, so one of two colliding keys is ``True``, ``False`` or a number: written
      starting with a digit or ``-`` and ending with a digit, one of the two with a comma
      before it (a quote inside a string is escaped). Only then is the body decoded once,
      keeping each object's pairs, to find a repeat. A few rare string keys such as
      ``"tree"`` look alike and cost that decoding.
    * Only a body with more than 200 brackets, strings included, can be nested too deep;
      its depth is then counted exactly, in C, ignoring strings.

    Not caught cheaply: a ``str`` subclass key whose ``__eq__`` or ``__hash__`` is not
    ``str``'s, or a ``dict`` subclass whose ``items()`` repeats a key, can repeat a string
    key without a trace in the text; it is refused only when an exact check runs anyway.

    Args:
        payload: The message as a mapping.
        own: How many containers the caller put in the payload with keys of its own, each
            counted as often as it appears.
        foreign: For each other container of the payload (the payload itself included),
            a dict with the keys that came from elsewhere.

    Returns:
        The JSON document as bytes.

    Raises:
        InvalidMessageError: Naming the field path of the first value that is not JSON
            (unknown type, NaN or Infinity, lone surrogate, bad or colliding key, cycle,
            too deep, or whatever the caller's objects raised).
    """
    try:
        text = _encode(payload)
        body = text.encode("utf-8")
    except Exception as error:  # the caller's objects may raise anything
        raise InvalidMessageError(_find_problem(payload, error)) from None
    openers = text.count("{") + text.count("[")
    if openers > own + len(foreign) or not _str_keys_only(foreign):
        _check_text(payload, body, openers)
    return body


def _check_text(payload: Mapping[str, Any], body: bytes, openers: int) -> None:
    """Refuse what the body shows the encoder let through (see :func:`serialize`)."""
    marks = body.translate(_MARKS)
    # find(), not "in": bytes' "in" first tries its argument as an int, which costs more.
    key_like = marks.find(_WORD_KEY) >= 0 or (
        marks.find(_NUMBER_KEY_END) >= 0 and marks.find(_NUMBER_KEY_AFTER_COMMA) >= 0
    )
    many_brackets = openers > _MAX_DEPTH
    if many_brackets or key_like:
        unnoticed = _unnoticed_problem(body, many_brackets, key_like)
        if unnoticed is not None:
            problem = _first_problem(payload) or unnoticed
            if problem:
                raise InvalidMessageError(problem)


def _find_problem(payload: Mapping[str, Any], error: Exception) -> str:
    """Say where and why a payload that failed to serialize is not JSON."""
    # A hostile object may fail once and not again; the encoder's error then says why.
    found = _first_problem(payload)
    return found or f"message: cannot be serialized as JSON: {error_reason(error)}"

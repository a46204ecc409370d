"""The track whitelist: the shapes Segment's settings use, name normalization and matching.

An event is sent when either of two rules matches it to a whitelisted name:

- the friendly rule (:func:`normalize_event_name`): case, spaces, ``_``, ``-``, ``.`` and
  camelCase boundaries are ignored;
- the legacy rule (:func:`_legacy_no_case`): the "no case" form that Segment's destination
  compared, so that no event it sent through the same whitelist is skipped here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Union

import attrs

from ._errors import ConfigurationError

WhitelistSpec = Union[Iterable[Any], Mapping[str, Any], None]

# A word break sits between a lower-case letter or digit and an upper-case letter
# ("orderCompleted"), and before the last capital of an acronym followed by lower case
# ("HTTPRequest" -> "HTTP Request").
_CAMEL_BREAK = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[\s_\-.]+")
_SEEN_LIMIT = 4096

# The legacy rule was written as JavaScript regular expressions, whose classes differ from
# Python's, so they are spelled out. JavaScript's \s is this set (Python's \s also holds
# \x1c-\x1f and \x85, but not \ufeff). JavaScript's \w is ASCII only: any other letter or
# digit is a separator there, and so here.
_JS_SPACE = re.compile("[\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]")
_JS_NON_WORD_RUN = re.compile(r"[^A-Za-z0-9]+")
_JS_CAPITALS = re.compile(r"(.)([A-Z]+)")


def normalize_event_name(name: str) -> str:
    """Return the form of an event name that whitelist matching compares.

    Case is ignored, and spaces, ``_``, ``-``, ``.`` and camelCase boundaries are the same
    word break, so ``Order Completed``, ``order_completed``, ``orderCompleted`` and
    ``ORDER-COMPLETED`` all normalize to ``order completed``.

    Args:
        name: An event name.

    Returns:
        The lower-case words of ``name`` joined by single spaces.
    """
    spaced = _CAMEL_BREAK.sub(" ", name)
    return _SEPARATORS.sub(" ", spaced).strip().lower()


def _legacy_no_case(name: str) -> str:
    """Return the form of an event name that Segment's destination compared.

    Segment matched whitelisted names with the npm package ``to-no-case`` 0.1.3, and sent
    an event when this form of its name equalled that of a whitelisted name. The first rule
    that applies wins:

    1. A name holding whitespace is only lower-cased: ``Order  Completed`` keeps both spaces.
    2. A name holding any character other than an ASCII letter or digit has each run of such
       characters replaced by one space, or removed at the end of the name; the result is
       lower-cased, with no camelCase split: ``orderCompleted_v2`` -> ``ordercompleted v2``.
       Non-ASCII letters are separators too (``CaféOpened`` -> ``caf opened``), and a name
       made only of separators is kept as it is, lower-cased.
    3. Any other name (ASCII letters and digits only) gets a space before each run of
       capitals that follows a character, and between the capitals of the run, then is
       lower-cased: ``orderCompleted`` -> ``order completed``, ``iOS`` -> ``i o s``.

    Args:
        name: An event name.

    Returns:
        The name's legacy "no case" form.
    """
    # str.lower() and JavaScript's toLowerCase() both apply Unicode's full lower-case
    # mapping, final sigma included, so the lower-casing needs no emulation.
    if _JS_SPACE.search(name):
        return name.lower()
    if _JS_NON_WORD_RUN.search(name):
        end = len(name)
        spaced = _JS_NON_WORD_RUN.sub(lambda run: "" if run.end() == end else " ", name)
        # to-no-case keeps the name when nothing is left, so that "注文" stays "注文".
        return (spaced or name).lower()
    # Only ASCII letters and digits are left here, so "." cannot meet a line break.
    return _JS_CAPITALS.sub(_split_capitals, name).lower()


def _split_capitals(match: re.Match[str]) -> str:
    # The character before the run is kept: at the start of a name it is the run's own
    # first capital, which is how "ABTest" ends up "a b test" rather than " a b test".
    return f"{match[1]} {' '.join(match[2])}"


def _names(spec: Iterable[Any] | Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    if isinstance(spec, Mapping):
        for key in spec:
            yield f"track_whitelist[{key!r}]", key
        return
    for index, item in enumerate(spec):
        where = f"track_whitelist[{index}]"
        if isinstance(item, Mapping):
            if "key" not in item:
                raise ConfigurationError(f"{where}: a whitelist object needs a 'key'")
            yield where, item["key"]
        else:
            yield where, item


@attrs.frozen
class TrackWhitelist:
    """The set of track events that are sent; empty means every event is sent.

    Build it with :meth:`from_spec`, which accepts every shape Segment's settings use: a
    list of names, Segment's "mixed" list of ``{"key": name, "value": ...}`` objects, or a
    mapping whose keys are names.

    An event is sent when its name matches a whitelisted name by either rule: the
    friendly one (:func:`normalize_event_name`) or the one Segment's destination used
    (``to-no-case`` 0.1.3), so every event Segment sent through the same whitelist is sent.

    Attributes:
        names: The normalized names (see :func:`normalize_event_name`).
        legacy_names: The names in the form Segment's destination compared.
    """

    names: frozenset[str] = frozenset()
    legacy_names: frozenset[str] = frozenset()
    # Normalizing costs a few regular expressions; remember the answer per event name.
    _seen: dict[str, bool] = attrs.field(factory=dict, init=False, eq=False, repr=False)

    @classmethod
    def from_spec(cls, spec: WhitelistSpec) -> TrackWhitelist:
        """Validate a whitelist given in any accepted shape.

        Args:
            spec: ``None``, an iterable of names and/or ``{"key": name}`` objects, or a
                mapping whose keys are names.

        Returns:
            The whitelist.

        Raises:
            ConfigurationError: For a bare string, a non-string name, an empty name, or a
                mixed item without ``key``.
        """
        if spec is None:
            return cls()
        if isinstance(spec, TrackWhitelist):
            return spec
        if isinstance(spec, (str, bytes)):
            raise ConfigurationError(
                "track_whitelist: expected a list of event names, got a single string"
            )
        if not isinstance(spec, (Iterable, Mapping)):
            raise ConfigurationError(
                f"track_whitelist: expected a list or mapping of event names, "
                f"got {type(spec).__name__}"
            )
        names = set()
        legacy_names = set()
        for where, name in _names(spec):
            if not isinstance(name, str):
                raise ConfigurationError(
                    f"{where}: event names must be strings, got {type(name).__name__}"
                )
            normalized = normalize_event_name(name)
            if not normalized:
                raise ConfigurationError(f"{where}: event name is empty")
            names.add(normalized)
            legacy_names.add(_legacy_no_case(name))
        return cls(frozenset(names), frozenset(legacy_names))

    def allows(self, event: str) -> bool:
        """Tell whether a track event with this name is sent.

        Args:
            event: The track call's event name.

        Returns:
            ``True`` when the whitelist is empty, holds the event's normalized name, or
            holds its legacy form.
        """
        if not self.names:
            return True
        allowed = self._seen.get(event)
        if allowed is None:
            allowed = (
                normalize_event_name(event) in self.names
                or _legacy_no_case(event) in self.legacy_names
            )
            # Apps use a handful of event names; the bound only guards against one that
            # puts ids in its event names.
            if len(self._seen) < _SEEN_LIMIT:
                self._seen[event] = allowed
        return allowed

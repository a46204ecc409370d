"""The track whitelist: the shapes Segment's settings use, name normalization and matching."""

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

    Attributes:
        names: The normalized names (see :func:`normalize_event_name`).
    """

    names: frozenset[str] = frozenset()
    # Normalizing costs two regular expressions; remember the answer per event name.
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
        for where, name in _names(spec):
            if not isinstance(name, str):
                raise ConfigurationError(
                    f"{where}: event names must be strings, got {type(name).__name__}"
                )
            normalized = normalize_event_name(name)
            if not normalized:
                raise ConfigurationError(f"{where}: event name is empty")
            names.add(normalized)
        return cls(frozenset(names))

    def allows(self, event: str) -> bool:
        """Tell whether a track event with this name is sent.

        Args:
            event: The track call's event name.

        Returns:
            ``True`` when the whitelist is empty or holds the event's normalized name.
        """
        if not self.names:
            return True
        allowed = self._seen.get(event)
        if allowed is None:
            allowed = normalize_event_name(event) in self.names
            # Apps use a handful of event names; the bound only guards against one that
            # puts ids in its event names.
            if len(self._seen) < _SEEN_LIMIT:
                self._seen[event] = allowed
        return allowed

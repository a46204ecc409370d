"""Send Segment-spec ``identify``, ``track`` and ``group`` calls straight to Gainsight.

Example:
    >>> import gainsight_segment as gs
    >>> client = gs.Client("35a84f9e-7084-47a1-b8a5-593444e9e862", send=False)
    >>> client.identify("123", {"accountId": "o283h08fh2390f923uofu23"}).outcome.value
    'dry_run'
    >>> client.shutdown()
    True
"""

import importlib
import logging
import warnings
from typing import TYPE_CHECKING, Any

from ._client import Client
from ._errors import (
    ClientClosedError,
    ConfigurationError,
    DeliveryError,
    GainsightError,
    InvalidMessageError,
)
from ._message import MessageBuilder
from ._receipt import Outcome, Receipt
from ._settings import Settings
from ._version import __version__
from .delivery._ledger import Stats

if TYPE_CHECKING:
    # Deprecated here: type checkers still see them, so that old imports keep checking.
    from .sync import AudienceSync as AudienceSync
    from .sync import MemoryStore as MemoryStore
    from .sync import SQLiteStore as SQLiteStore
    from .sync import StateChange as StateChange
    from .sync import StateDiff as StateDiff
    from .sync import StateStore as StateStore
    from .sync import SyncProgress as SyncProgress
    from .sync import SyncResult as SyncResult
    from .sync import TraitSync as TraitSync
    from .sync import audience_key as audience_key

# The audience names moved to gainsight_segment.sync; importing them from here still works,
# with a warning. The tools (sync, cli, testing) load only when asked for, so that
# `import gainsight_segment` stays as cheap as the client itself.
_MOVED_TO_SYNC = frozenset(
    {
        "AudienceSync",
        "MemoryStore",
        "SQLiteStore",
        "StateChange",
        "StateDiff",
        "StateStore",
        "SyncProgress",
        "SyncResult",
        "TraitSync",
        "audience_key",
    }
)


def __getattr__(name: str) -> Any:
    if name not in _MOVED_TO_SYNC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"gainsight_segment.{name} is deprecated; import it from gainsight_segment.sync "
        f"(from gainsight_segment.sync import {name})",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(".sync", __name__), name)


# Libraries stay silent unless the app configures logging.
logging.getLogger("gainsight_segment").addHandler(logging.NullHandler())

__all__ = [
    "Client",
    "ClientClosedError",
    "ConfigurationError",
    "DeliveryError",
    "GainsightError",
    "InvalidMessageError",
    "MessageBuilder",
    "Outcome",
    "Receipt",
    "Settings",
    "Stats",
    "__version__",
]

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
    from ._audience import AudienceSync, SyncProgress, SyncResult, TraitSync, audience_key
    from ._audience_store import (
        MemoryStore,
        SQLiteStore,
        StateChange,
        StateDiff,
        StateStore,
    )

# Audience syncing needs sqlite3, csv and a thread pool: imported on first use, so that
# `import gainsight_segment` stays as cheap as the client itself.
_LAZY = {
    "AudienceSync": "._audience",
    "SyncProgress": "._audience",
    "SyncResult": "._audience",
    "TraitSync": "._audience",
    "audience_key": "._audience",
    "MemoryStore": "._audience_store",
    "SQLiteStore": "._audience_store",
    "StateChange": "._audience_store",
    "StateDiff": "._audience_store",
    "StateStore": "._audience_store",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


# Libraries stay silent unless the app configures logging.
logging.getLogger("gainsight_segment").addHandler(logging.NullHandler())

__all__ = [
    "AudienceSync",
    "Client",
    "ClientClosedError",
    "ConfigurationError",
    "DeliveryError",
    "GainsightError",
    "InvalidMessageError",
    "MemoryStore",
    "MessageBuilder",
    "Outcome",
    "Receipt",
    "SQLiteStore",
    "Settings",
    "StateChange",
    "StateDiff",
    "StateStore",
    "Stats",
    "SyncProgress",
    "SyncResult",
    "TraitSync",
    "__version__",
    "audience_key",
]

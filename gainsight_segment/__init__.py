"""Send Segment-spec ``identify``, ``track`` and ``group`` calls straight to Gainsight.

Example:
    >>> import gainsight_segment as gs
    >>> client = gs.Client("35a84f9e-7084-47a1-b8a5-593444e9e862", send=False)
    >>> client.identify("123", {"accountId": "o283h08fh2390f923uofu23"}).outcome.value
    'dry_run'
    >>> client.shutdown()
    True
"""

import logging

from ._client import Client
from ._config import Settings
from ._errors import (
    ClientClosedError,
    ConfigurationError,
    DeliveryError,
    GainsightError,
    InvalidMessageError,
)
from ._message import MessageBuilder
from ._receipt import Outcome, Receipt
from ._report import Stats
from ._version import __version__

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

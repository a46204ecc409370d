"""The durable outbox: messages kept in an SQLite file until they are delivered.

A client writes to it with ``Client(..., outbox="events.db")``; this package is for looking
at a file and mending it: how many messages wait, how old the oldest is, and the dead
letters (messages the endpoint refused for good), which can be sent again or exported.
The ``gainsight-segment outbox PATH`` command does the same from a shell.
"""

from ._database import OutboxError
from ._inspect import DeadLetter, Outbox, OutboxSummary

__all__ = ["DeadLetter", "Outbox", "OutboxError", "OutboxSummary"]

"""What a client reports: its callbacks, recorded, and whether its counters add up."""

from __future__ import annotations

import threading
from typing import Any

import gainsight_segment as gs


class Outcomes:
    """Records what a client's callbacks are told, from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.delivered: list[str] = []
        self.errors: list[tuple[gs.DeliveryError, dict[str, Any]]] = []

    def on_success(self, message: dict[str, Any]) -> None:
        with self._lock:
            self.delivered.append(message["messageId"])

    def on_error(self, error: gs.DeliveryError, message: dict[str, Any]) -> None:
        with self._lock:
            self.errors.append((error, message))

    @property
    def kinds(self) -> list[str]:
        with self._lock:
            return [error.kind for error, _ in self.errors]

    @property
    def reported(self) -> list[str]:
        with self._lock:
            return [message["messageId"] for _, message in self.errors]

    def callbacks(self) -> dict[str, Any]:
        return {"on_success": self.on_success, "on_error": self.on_error}


def settled(stats: gs.Stats) -> int:
    return stats.delivered + stats.failed + stats.dropped


def reconciles(stats: gs.Stats) -> bool:
    return stats.queued == settled(stats) + stats.pending + stats.in_flight

"""Decision messages out (``<root>/line/<line>/decision``, QoS 1) and the record of which
final ones the broker acknowledged (``published`` in the state db: prune deletes only
those, and a restart re-publishes the rest; docs/host.md, "Exactly once").
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from sortcam import mqtt_contract as mc
from sortcam import mqtt_link

from .metrics import Metrics
from .store import NewItem

log = logging.getLogger("sortcam.host")

ROW_KEYS = ("device", "boot", "seq", "label", "bin", "reason", "sort_id", "gate", "confidence")


def decision_row(item: NewItem, sort_id: int) -> dict[str, Any]:
    """The fields every decision message of an item carries."""
    return {
        "device": item.device,
        "boot": item.boot,
        "seq": item.seq,
        "label": item.label,
        "bin": item.bin,
        "reason": item.reason,
        "sort_id": sort_id,
        "gate": item.gate,
        "confidence": item.confidence,
        "biodegradable": item.biodegradable,
    }


def row_from_db(row: sqlite3.Row) -> dict[str, Any]:
    """:func:`decision_row` for an item read back from the state db (recovery)."""
    out = {k: row[k] for k in ROW_KEYS}
    out["biodegradable"] = None if row["biodegradable"] is None else bool(row["biodegradable"])
    return out


class DecisionPublisher:
    """Publishes decisions on ``client`` (set once connected; before that nothing is sent) and
    reports final ones the broker acknowledged through ``mark_published(sort_ids)``."""

    def __init__(
        self, topic: str, metrics: Metrics, mark_published: Callable[[list[int]], None], connected: Callable[[], bool]
    ) -> None:
        self.topic = topic
        self.client: Any = None
        self._metrics = metrics
        self._mark_published = mark_published
        self._connected = connected
        self._lock = threading.Lock()
        self._final: list[tuple[Any, int]] = []
        """``(MQTTMessageInfo, sort_id)`` of final decisions not yet known to be acknowledged."""

    def publish(self, row: dict[str, Any], status: str, final: bool, extra: dict[str, Any] | None = None) -> None:
        if self.client is None:
            return
        body = {**row, "status": status, "ts": round(time.time(), 3), **(extra or {})}
        try:
            info = self.client.publish(self.topic, mc.encode(body), qos=mc.QOS)
        except (RuntimeError, ValueError) as exc:
            log.error("cannot publish decision for %d: %s", row["sort_id"], exc)
            return
        self._metrics.inc("decisions_published_total", labels={"status": status})
        if final:
            with self._lock:
                self._final.append((info, int(row["sort_id"])))

    def flush(self, wait_s: float = 0.0) -> None:
        """Report the final decisions the broker acknowledged; waits up to ``wait_s`` for the
        rest while connected. Polled, not an ``on_publish`` callback: that would cost paho's
        network thread two objects per PUBACK, two PUBACKs per item."""
        end = time.monotonic() + wait_s
        while True:
            with self._lock:
                pending, self._final = self._final, []
            done: list[int] = []
            left: list[tuple[Any, int]] = []
            for info, sort_id in pending:
                if mqtt_link.acknowledged(info):
                    done.append(sort_id)
                else:
                    left.append((info, sort_id))
            if left:
                with self._lock:
                    self._final[:0] = left
            if done:
                self._mark_published(done)
            if not left or time.monotonic() >= end or not self._connected():
                return
            time.sleep(0.05)

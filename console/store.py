"""What the console knows about the line: items and device status.

Items are keyed by their identity ``(device, boot, seq)`` and merged from up to four
messages that may arrive in any order: the device's classification, the host's decision
(sent, then acked or missed), and the device's sample frame. ``sortcam collect`` writes
the same store for its frames (:meth:`Store.add_frame`), so its folder opens in the console. They live in SQLite
(``<data>/console.db``) so that the labelling queue survives a console restart; device
status is kept in memory (it is retained on the broker and comes back on subscribe).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sortcam.card import REJECT_BIN
from sortcam.errors import ConfigError

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    device TEXT NOT NULL, boot TEXT NOT NULL, seq INTEGER NOT NULL,
    ts REAL NOT NULL,               -- first time the console heard of the item (epoch s)
    label TEXT, class_id INTEGER, confidence REAL, top TEXT, model TEXT, latency_ms REAL,
    bin TEXT, reason TEXT, status TEXT, gate INTEGER, sort_id INTEGER, decision_ts REAL,
    sample TEXT,                    -- path of the JPEG relative to the data dir
    flagged INTEGER NOT NULL DEFAULT 0,
    labelled_as TEXT, labelled_ts REAL,
    PRIMARY KEY (device, boot, seq)
);
CREATE INDEX IF NOT EXISTS items_ts ON items (ts);
"""

TERMINAL_STATUSES = ("acked", "missed", "rejected")
"""Decision statuses that a later ``sent`` must not overwrite."""


@dataclass
class DeviceState:
    device: str
    state: str
    received: float
    """Epoch seconds of the last status message."""
    status: dict[str, Any]


QUEUE_WHERE = (
    "labelled_as IS NULL AND (flagged=1 OR reason='low_confidence' OR (confidence IS NOT NULL AND confidence < ?))"
)
"""Items that wait for a label (with or without their sample frame)."""


class Store:
    """Thread-safe item table (SQLite) and device table (memory).

    ``threshold`` is the confidence (0..1) below which an item joins the labelling queue.
    """

    def __init__(self, db_path: Path, threshold: float = 0.6) -> None:
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self.threshold = float(threshold)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.db_path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self.devices: dict[str, DeviceState] = {}
        self.rejected_messages = 0
        """Messages that failed the contract (counted, shown on the line view)."""
        self.started = time.time()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _ensure(self, db: sqlite3.Connection, device: str, boot: str, seq: int, now: float) -> None:
        db.execute("INSERT OR IGNORE INTO items (device, boot, seq, ts) VALUES (?, ?, ?, ?)", (device, boot, seq, now))

    # --- feeding -----------------------------------------------------------------------

    def add_classification(self, msg: dict[str, Any], now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._tx() as db:
            self._ensure(db, msg["device"], msg["boot"], msg["seq"], now)
            db.execute(
                "UPDATE items SET label=?, class_id=?, confidence=?, top=?, model=?, latency_ms=?"
                " WHERE device=? AND boot=? AND seq=?",
                (
                    msg["label"],
                    msg["class_id"],
                    float(msg["confidence"]),
                    json.dumps(msg["top"]),
                    msg["model"],
                    float(msg["latency_ms"]),
                    msg["device"],
                    msg["boot"],
                    msg["seq"],
                ),
            )

    def add_decision(self, msg: dict[str, Any], now: float | None = None) -> None:
        now = time.time() if now is None else now
        status = msg.get("status") if isinstance(msg.get("status"), str) else None
        with self._tx() as db:
            self._ensure(db, msg["device"], msg["boot"], msg["seq"], now)
            row = db.execute(
                "SELECT status, label, confidence FROM items WHERE device=? AND boot=? AND seq=?",
                (msg["device"], msg["boot"], msg["seq"]),
            ).fetchone()
            if row["status"] in TERMINAL_STATUSES and status not in TERMINAL_STATUSES:
                return  # a late "sent" after "acked"/"missed": keep the outcome
            conf = msg.get("confidence")
            db.execute(
                "UPDATE items SET bin=?, reason=?, status=COALESCE(?, status), gate=COALESCE(?, gate),"
                " sort_id=COALESCE(?, sort_id), decision_ts=?, label=COALESCE(label, ?),"
                " confidence=COALESCE(confidence, ?) WHERE device=? AND boot=? AND seq=?",
                (
                    msg["bin"],
                    msg["reason"],
                    status,
                    _int_or_none(msg.get("gate")),
                    _int_or_none(msg.get("sort_id")),
                    float(msg["ts"]),
                    msg["label"],
                    float(conf) if isinstance(conf, (int, float)) else None,
                    msg["device"],
                    msg["boot"],
                    msg["seq"],
                ),
            )

    def add_sample(
        self,
        device: str,
        boot: str,
        seq: int,
        rel_path: str,
        now: float | None = None,
        label: str | None = None,
        confidence: float | None = None,
    ) -> None:
        now = time.time() if now is None else now
        with self._tx() as db:
            self._ensure(db, device, boot, seq, now)
            db.execute(
                "UPDATE items SET sample=?, label=COALESCE(label, ?), confidence=COALESCE(confidence, ?)"
                " WHERE device=? AND boot=? AND seq=?",
                (rel_path, label, confidence, device, boot, seq),
            )

    def add_frame(self, device: str, boot: str, seq: int, rel_path: str, now: float | None = None) -> bool:
        """A collected frame (``sortcam collect``): an item with only its image, flagged for labelling.

        Returns False when ``(device, boot, seq)`` is already known (a redelivered frame); it is left as it was.
        """
        now = time.time() if now is None else now
        with self._tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO items (device, boot, seq, ts, sample, flagged) VALUES (?, ?, ?, ?, ?, 1)",
                (device, boot, seq, now, rel_path),
            )
            return cur.rowcount == 1

    def set_status(self, device: str, status: dict[str, Any], now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._lock:
            prev = self.devices.get(device)
            merged = dict(prev.status) if prev is not None else {}
            merged.update(status)  # an offline Last Will keeps the last known fw/model/heap
            self.devices[device] = DeviceState(device, str(status["state"]), now, merged)

    # --- operator actions -------------------------------------------------------------

    def get(self, device: str, boot: str, seq: int) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM items WHERE device=? AND boot=? AND seq=?", (device, boot, seq)
            ).fetchone()
        return _row(row) if row is not None else None

    def flag(self, device: str, boot: str, seq: int) -> bool:
        with self._tx() as db:
            cur = db.execute("UPDATE items SET flagged=1 WHERE device=? AND boot=? AND seq=?", (device, boot, seq))
            return cur.rowcount == 1

    def set_labelled(self, device: str, boot: str, seq: int, label: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._tx() as db:
            db.execute(
                "UPDATE items SET labelled_as=?, labelled_ts=? WHERE device=? AND boot=? AND seq=?",
                (label, now, device, boot, seq),
            )

    # --- views ------------------------------------------------------------------------

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM items ORDER BY ts DESC, seq DESC LIMIT ?", (limit,)).fetchall()
        return [_row(r) for r in rows]

    def queue(self, limit: int = 100) -> list[dict[str, Any]]:
        """Unlabelled items with a sample that are below the threshold, flagged, or sent to reject for it."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM items WHERE sample IS NOT NULL AND {QUEUE_WHERE} ORDER BY ts DESC LIMIT ?",
                (self.threshold, limit),
            ).fetchall()
        return [_row(r) for r in rows]

    def queue_without_sample(self) -> int:
        """Low-confidence items whose frame never arrived (rate-limited or lost): shown, not labellable."""
        with self._lock:
            (n,) = self._db.execute(
                f"SELECT COUNT(*) FROM items WHERE sample IS NULL AND {QUEUE_WHERE}",
                (self.threshold,),
            ).fetchone()
        return int(n)

    def summary(self, now: float | None = None) -> dict[str, Any]:
        """Counts per bin, items in the last minute, totals, missed and rejected counts."""
        now = time.time() if now is None else now
        with self._lock:
            bins = {
                r[0]: int(r[1])
                for r in self._db.execute(
                    "SELECT bin, COUNT(*) FROM items WHERE bin IS NOT NULL GROUP BY bin ORDER BY bin"
                )
            }
            (total,) = self._db.execute("SELECT COUNT(*) FROM items").fetchone()
            (last_min,) = self._db.execute("SELECT COUNT(*) FROM items WHERE ts >= ?", (now - 60.0,)).fetchone()
            (missed,) = self._db.execute("SELECT COUNT(*) FROM items WHERE status='missed'").fetchone()
            (rejected,) = self._db.execute(
                "SELECT COUNT(*) FROM items WHERE status='rejected' OR bin=?", (REJECT_BIN,)
            ).fetchone()
            (labelled,) = self._db.execute("SELECT COUNT(*) FROM items WHERE labelled_as IS NOT NULL").fetchone()
        window = min(60.0, max(1.0, now - self.started))
        return {
            "items": int(total),
            "bins": bins,
            "items_last_minute": int(last_min),
            "items_per_minute": round(int(last_min) * 60.0 / window, 1),
            "missed": int(missed),
            "rejected": int(rejected),
            "labelled": int(labelled),
            "queue": len(self.queue(limit=10000)),
            "bad_messages": self.rejected_messages,
        }

    def device_list(self) -> list[dict[str, Any]]:
        with self._lock:
            devices = sorted(self.devices.values(), key=lambda d: d.device)
            return [
                {
                    "device": d.device,
                    "state": d.state,
                    "received": d.received,
                    **{k: d.status.get(k) for k in ("fw", "model", "fps", "free_heap", "rssi", "uptime_s")},
                }
                for d in devices
            ]


def prune(
    data_dir: Path, older_than_days: float, threshold: float = 0.6, *, now: float | None = None, dry_run: bool = False
) -> tuple[int, int]:
    """Delete items first heard of more than ``older_than_days`` ago, and their sample JPEGs.

    Items waiting in the labelling queue (below ``threshold``, flagged or rejected for low
    confidence, not yet labelled) are kept whatever their age; labelled photos live in the
    labels folder and are never touched. Safe while the console runs (SQLite WAL).
    Returns ``(items, sample files)`` deleted (or, with ``dry_run``, that would be).
    """
    if not older_than_days >= 1.0:
        raise ConfigError(f"--older-than-days must be >= 1 (got {older_than_days})")
    db_path = Path(data_dir) / "console.db"
    if not db_path.is_file():
        raise ConfigError(f"no console item store at {db_path} (give --data, the console's data folder)")
    cutoff = (time.time() if now is None else now) - older_than_days * 86400.0
    where = f"ts < ? AND NOT COALESCE(({QUEUE_WHERE}), 0)"  # SQL NULL logic: no decision yet is not queued
    try:
        db = sqlite3.connect(str(db_path), isolation_level=None, timeout=30)
        try:
            db.execute("BEGIN IMMEDIATE")
            rows = db.execute(f"SELECT sample FROM items WHERE {where}", (cutoff, threshold)).fetchall()
            if not dry_run:
                db.execute(f"DELETE FROM items WHERE {where}", (cutoff, threshold))
            db.execute("ROLLBACK" if dry_run else "COMMIT")
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"{db_path} is not a console item store: {exc}") from None
    root = Path(data_dir).resolve()
    files = 0
    for (rel,) in rows:
        if not rel:
            continue
        path = (root / rel).resolve()
        if root not in path.parents or not path.is_file():
            continue  # never outside the data folder; already gone is fine
        files += 1
        if not dry_run:
            path.unlink(missing_ok=True)
    return len(rows), files


def _int_or_none(v: Any) -> int | None:
    return v if type(v) is int else None


def _row(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    d["top"] = json.loads(d["top"]) if d.get("top") else []
    d["flagged"] = bool(d["flagged"])
    d["key"] = f"{d['device']}/{d['boot']}/{d['seq']}"
    d["highlight"] = (
        "missed"
        if d.get("status") == "missed"
        else "rejected"
        if d.get("status") == "rejected" or d.get("bin") == REJECT_BIN
        else ""
    )
    return d

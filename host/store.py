"""The controller's durable state and event log: one SQLite file in WAL mode.

``items`` holds one row per item identity ``(device, boot, seq)``. Its ``sort_id``
column is an ``AUTOINCREMENT`` key: SQLite never hands the same value out twice, even
after rows are deleted or the process dies, so it doubles as the serial ``<id>``, a
monotonically increasing integer that survives restarts. A row is committed BEFORE the
``SORT`` is written and before the MQTT message is acknowledged; that ordering is the
whole exactly-once argument (docs/host.md, "Exactly once").

Item ``status``: ``sent`` (decided, handed to the sorter, no ACK yet), ``acked``,
``missed`` (no ACK before its deadline, a permanent NAK, or retries used up; see
``miss_reason``), ``rejected`` (the bin has no gate; never sent). Timestamps are Unix
seconds (float). ``events`` holds everything that is not an item: invalid messages,
sorter ``EVT`` lines, link and device state changes.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sortcam.errors import ConfigError

log = logging.getLogger("sortcam.host.store")

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    sort_id INTEGER PRIMARY KEY AUTOINCREMENT,
    device TEXT NOT NULL,
    boot TEXT NOT NULL,
    seq INTEGER NOT NULL,
    label TEXT NOT NULL,
    class_id INTEGER,
    confidence REAL,
    biodegradable INTEGER,
    bin TEXT NOT NULL,
    gate INTEGER,
    reason TEXT NOT NULL,
    status TEXT NOT NULL,
    miss_reason TEXT,
    device_latency_ms REAL,
    belt_delay_ms INTEGER,
    delay_ms INTEGER,
    received_ts REAL NOT NULL,
    decided_ts REAL NOT NULL,
    deadline_ts REAL NOT NULL,
    written_ts REAL,
    done_ts REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0,
    published INTEGER NOT NULL DEFAULT 0,
    UNIQUE (device, boot, seq)
);
CREATE INDEX IF NOT EXISTS items_status ON items (status);
CREATE INDEX IF NOT EXISTS items_device ON items (device);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    device TEXT,
    detail TEXT NOT NULL
);
"""

ITEM_STATUSES: tuple[str, ...] = ("sent", "acked", "missed", "rejected")
FINAL_STATUSES: tuple[str, ...] = ("acked", "missed", "rejected")


@dataclass
class NewItem:
    """What the controller decided for one item, before it has a ``sort_id``."""

    device: str
    boot: str
    seq: int
    label: str
    class_id: int
    confidence: float
    biodegradable: bool | None
    bin: str
    gate: int | None
    reason: str
    status: str
    device_latency_ms: float
    belt_delay_ms: int
    received_ts: float
    decided_ts: float
    deadline_ts: float


class StateStore:
    """Thread-safe wrapper over the SQLite file. ``sync``: ``normal`` survives a process
    crash (WAL), ``full`` also survives a power cut at the cost of an fsync per commit."""

    def __init__(self, path: str | Path, sync: str = "normal") -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            if self.path.parent and not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(str(self.path) + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError(f"cannot use state db {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise ConfigError(f"state db {self.path} is in use by another controller") from None
        try:
            self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if sync == 'full' else 'NORMAL'}")
            # Checkpoints (copying the WAL into the db file, with an fsync) run from the
            # housekeeping thread on a connection of their own (:meth:`checkpoint`), not inside
            # whichever commit crosses 1000 pages: that commit would hold up the items behind it.
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            os.close(self._lock_fd)
            raise ConfigError(f"cannot use state db {self.path}: {exc}") from None
        self._db.row_factory = sqlite3.Row
        self._checkpointer: sqlite3.Connection | None = None
        self._checkpoint_lock = threading.Lock()
        self._closed = False

    def checkpoint(self) -> None:
        """Copy committed WAL pages into the db file (PASSIVE: never waits for, nor blocks, a
        commit). Called every half second by the controller's housekeeping; a failure (a full
        disk) is left for the commits to report and the next call to retry."""
        with self._checkpoint_lock:
            if self._closed:
                return
            try:
                if self._checkpointer is None:
                    self._checkpointer = sqlite3.connect(
                        str(self.path), isolation_level=None, check_same_thread=False, timeout=10
                    )
                self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:
                log.debug("checkpoint of %s failed: %s", self.path, exc)

    def close(self) -> None:
        with self._checkpoint_lock:
            self._closed = True
            if self._checkpointer is not None:
                self._checkpointer.close()
                self._checkpointer = None
        with self._lock:
            try:
                try:
                    self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error:
                    pass
                self._db.close()
            finally:
                os.close(self._lock_fd)

    # --- items ---------------------------------------------------------------------

    def record_item(self, item: NewItem) -> tuple[int, bool, str]:
        """Insert the item unless its identity is known. Returns ``(sort_id, is_new, status)``.

        Committed before returning: after this the decision survives a crash.
        """
        return self.record_items([item])[0]

    def record_items(self, items: list[NewItem]) -> list[tuple[int, bool, str]]:
        """:meth:`record_item` for a batch in one transaction (one commit for a burst)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                out = [self._record(item) for item in items]
                self._db.execute("COMMIT")
                return out
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _record(self, item: NewItem) -> tuple[int, bool, str]:
        """Insert or count a duplicate; the caller holds the lock and the transaction."""
        cur = self._db.execute(
            "INSERT OR IGNORE INTO items (device, boot, seq, label, class_id, confidence, biodegradable,"
            " bin, gate, reason, status, device_latency_ms, belt_delay_ms, received_ts, decided_ts,"
            " deadline_ts, done_ts) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                item.device,
                item.boot,
                item.seq,
                item.label,
                item.class_id,
                item.confidence,
                None if item.biodegradable is None else int(item.biodegradable),
                item.bin,
                item.gate,
                item.reason,
                item.status,
                item.device_latency_ms,
                item.belt_delay_ms,
                item.received_ts,
                item.decided_ts,
                item.deadline_ts,
                item.decided_ts if item.status == "rejected" else None,
            ),
        )
        if cur.rowcount == 1:
            return int(cur.lastrowid or 0), True, item.status
        self._db.execute(
            "UPDATE items SET duplicates = duplicates + 1 WHERE device=? AND boot=? AND seq=?",
            (item.device, item.boot, item.seq),
        )
        row = self._db.execute(
            "SELECT sort_id, status FROM items WHERE device=? AND boot=? AND seq=?",
            (item.device, item.boot, item.seq),
        ).fetchone()
        return int(row["sort_id"]), False, str(row["status"])

    def finish(
        self,
        sort_id: int,
        status: str,
        *,
        miss_reason: str | None,
        attempts: int,
        delay_ms: int | None,
        written_ts: float | None,
        done_ts: float,
    ) -> None:
        """Record an item's end state (``acked`` or ``missed``)."""
        self.finish_many([(sort_id, status, miss_reason, attempts, delay_ms, written_ts, done_ts)])

    def finish_many(self, rows: list[tuple[int, str, str | None, int, int | None, float | None, float]]) -> None:
        """Several ``(sort_id, status, miss_reason, attempts, delay_ms, written_ts, done_ts)`` in one commit."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "UPDATE items SET status=?, miss_reason=?, attempts=?, delay_ms=?,"
                    " written_ts=COALESCE(written_ts, ?), done_ts=? WHERE sort_id=?",
                    [(st, mr, at, dl, wt, dt, sid) for sid, st, mr, at, dl, wt, dt in rows],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def mark_published(self, sort_ids: Iterable[int]) -> None:
        """The final decision message of these items reached the broker."""
        ids = [(i,) for i in sort_ids]
        if not ids:
            return
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("UPDATE items SET published=1 WHERE sort_id=?", ids)
            self._db.execute("COMMIT")

    def pending(self) -> list[sqlite3.Row]:
        """Items decided and handed to the sorter but never acknowledged, oldest first."""
        with self._lock:
            return self._db.execute("SELECT * FROM items WHERE status='sent' ORDER BY sort_id").fetchall()

    def unpublished_final(self) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(
                "SELECT * FROM items WHERE status IN ('acked','missed','rejected') AND published=0 ORDER BY sort_id"
            ).fetchall()

    def get(self, sort_id: int) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute("SELECT * FROM items WHERE sort_id=?", (sort_id,)).fetchone()
            return row

    def status_counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) AS n FROM items GROUP BY status").fetchall()
        return {str(r["status"]): int(r["n"]) for r in rows}

    # --- events --------------------------------------------------------------------

    def log_event(self, kind: str, detail: str, device: str | None = None, ts: float | None = None) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO events (ts, kind, device, detail) VALUES (?,?,?,?)",
                (time.time() if ts is None else ts, kind, device, detail[:500]),
            )


# --- read-only queries (``sortcam host events``) ------------------------------------


def open_readonly(path: str | Path) -> sqlite3.Connection:
    """Open an existing state db for queries only; raises :class:`ConfigError` if absent."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"no event log at {p} (give --db, the controller's --state-db)")
    try:
        db = sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=10)
        db.row_factory = sqlite3.Row
        db.execute("SELECT 1 FROM items LIMIT 1")
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"{p} is not a sortcam event log: {exc}") from None
    return db


def prune(
    path: str | Path, older_than_days: float, *, now: float | None = None, dry_run: bool = False
) -> tuple[int, int]:
    """Delete finished items and events older than ``older_than_days``; returns ``(items, events)``.

    Only items whose outcome is final (acked, missed, rejected) AND whose final decision
    reached the broker are deleted; ``sent`` items and unpublished outcomes are kept
    whatever their age, so the controller still finishes them after a restart. Safe while
    the controller runs (SQLite locking, WAL). A deleted identity is forgotten: a
    redelivery of it older than the cutoff would be sorted again, hence the floor of 1 day.
    """
    if not older_than_days >= 1.0:
        raise ConfigError(f"--older-than-days must be >= 1 (got {older_than_days}): younger rows guard redeliveries")
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"no event log at {p} (give --db, the controller's --state-db)")
    cutoff = (time.time() if now is None else now) - older_than_days * 86400.0
    item_where = "status IN ('acked','missed','rejected') AND published=1 AND done_ts IS NOT NULL AND done_ts < ?"
    try:
        db = sqlite3.connect(str(p), isolation_level=None, timeout=30)
        try:
            db.execute("SELECT 1 FROM items LIMIT 1")
            db.execute("BEGIN IMMEDIATE")
            n_items = db.execute(f"SELECT COUNT(*) FROM items WHERE {item_where}", (cutoff,)).fetchone()[0]
            n_events = db.execute("SELECT COUNT(*) FROM events WHERE ts < ?", (cutoff,)).fetchone()[0]
            if not dry_run:
                db.execute(f"DELETE FROM items WHERE {item_where}", (cutoff,))
                db.execute("DELETE FROM events WHERE ts < ?", (cutoff,))
            db.execute("ROLLBACK" if dry_run else "COMMIT")
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"{p} is not a sortcam event log: {exc}") from None
    return int(n_items), int(n_events)


def query_items(
    db: sqlite3.Connection, *, device: str | None = None, status: str | None = None, last: int | None = None
) -> list[dict[str, Any]]:
    """Items newest last, with latencies in ms: ``write_ms`` (receipt to first serial
    write) and ``ack_ms`` (receipt to ACK or miss)."""
    where: list[str] = []
    params: list[Any] = []
    if device:
        where.append("device = ?")
        params.append(device)
    if status:
        where.append("status = ?")
        params.append(status)
    sql = "SELECT * FROM items" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY sort_id DESC"
    if last is not None:
        sql += " LIMIT ?"
        params.append(last)
    rows = db.execute(sql, params).fetchall()
    out = []
    for row in reversed(rows):
        d = dict(row)
        d["biodegradable"] = None if d["biodegradable"] is None else bool(d["biodegradable"])
        d["write_ms"] = _ms(d["written_ts"], d["received_ts"])
        d["ack_ms"] = _ms(d["done_ts"], d["received_ts"])
        out.append(d)
    return out


def query_events(db: sqlite3.Connection, *, device: str | None = None, last: int | None = None) -> list[dict[str, Any]]:
    sql = "SELECT * FROM events" + (" WHERE device = ?" if device else "") + " ORDER BY id DESC"
    params: list[Any] = [device] if device else []
    if last is not None:
        sql += " LIMIT ?"
        params.append(last)
    return [dict(r) for r in reversed(db.execute(sql, params).fetchall())]


def _ms(end: float | None, start: float | None) -> float | None:
    if end is None or start is None:
        return None
    return round((end - start) * 1000.0, 3)


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Plain fixed-width text table for a terminal."""
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value > 1e9:
            return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value)) + f".{int(value * 1000) % 1000:03d}"
        return f"{value:.4g}" if abs(value) < 1 else f"{value:.1f}"
    return str(value)

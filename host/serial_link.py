"""The serial side: one worker thread that owns the sorter link (docs/DESIGN.md, "Serial contract").

:class:`SorterLink` takes :class:`SortJob` s, writes ``SORT <id> <gate> <delay_ms>``,
and reports each job exactly once through ``on_done([(job, status, miss_reason), ...])``
with ``status`` ``acked`` or ``missed`` (batched over up to ``DONE_BATCH_S``, so the
controller records a burst of ACKs in one transaction). Up to ``window`` SORTs are in flight at once (the
sorter answers by id, so pipelining is safe and keeps a pty or USB link busy).

Faults it handles:

- no ACK within ``ack_timeout_ms``: the identical line (same id, same delay) is written
  again, up to ``retries`` more times; the sorter treats a repeated id as done;
- ``NAK <id> checksum``: written again at once (``NAK 0 checksum`` = the sorter could
  not read the id: every in-flight line is written again); ``busy``/``jam``/``full``:
  retried after the ACK timeout; ``syntax``/``gate``/``delay``/anything else: permanent;
- a sorter line with a bad checksum or bad syntax: counted and ignored (the SORT it may
  have acknowledged times out and is re-sent, the sorter ACKs the repeated id again);
- the port vanishing (USB unplug, EOF, I/O error): in-flight jobs go back to the head of
  the queue, the port is reopened every ``reconnect_s`` and sending resumes;
- an item not acknowledged before its deadline: reported ``missed`` (never dropped);
- ``EVT`` lines (``JAM``, ``READY``, ``BIN_FULL <gate>``, ``CLEARED``) go to ``on_event``.

A reader thread per open port turns bytes into lines; the protocol state lives with the
worker thread, fed through one queue, and one lock (``_state``) guards it: the worker holds
it while it acts and drops it while it waits. :meth:`SorterLink.submit_many` takes it too
and writes the new SORTs itself, so an item's SORT goes out without a thread hand-over (the
worker is then woken to time their ACKs). A finisher thread calls ``on_done`` (the
controller's commit and decision messages), off the worker's path.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import serial

from sortcam import serial_contract as sc
from sortcam.errors import ContractError, SerialLinkError

from .metrics import Metrics

log = logging.getLogger("sortcam.host.serial")

DONE_BATCH_S = 0.005
"""Finished jobs are reported (one db commit, then their decisions) at most this long after the
first of them, or at ``DONE_BATCH_MAX``: an ACK that arrives alone would otherwise cost a commit
of its own. The item is already sorted; only its record waits. A crash in between leaves it
``sent``, and the restart re-sends the same id, which the sorter ACKs without moving again."""
DONE_BATCH_MAX = 256
SUBMIT_WAIT_S = 0.05
"""How long :meth:`SorterLink.submit_many` waits for the worker's turn before queueing instead."""
PERMANENT_NAKS = ("syntax", "gate", "delay")
RETRY_NAKS = ("busy", "jam", "full")


@dataclass
class SortJob:
    """One item on its way to the sorter. ``*_mono`` are :func:`time.monotonic` seconds."""

    sort_id: int
    gate: int
    belt_delay_ms: int
    device_latency_ms: float
    received_mono: float
    received_ts: float
    """Wall-clock receipt (:func:`time.time`), the anchor for the wall-clock times recorded
    of this job: ``received_ts + (t_mono - received_mono)`` for any monotonic ``t_mono``."""
    deadline_mono: float
    sent_out: bool = True
    """False while the controller has yet to publish this job's "sent" decision (set before its
    final one may go out)."""
    device: str = ""
    attempts: int = 0
    delay_ms: int | None = None
    line: bytes = b""
    first_write_mono: float | None = None
    done_mono: float = 0.0
    """When the ACK (or the miss) was seen; the batch is reported up to ``DONE_BATCH_S`` later."""
    last_write_mono: float = 0.0
    retry_at: float = 0.0
    last_nak: str = ""
    context: dict[str, Any] = field(default_factory=dict)


DoneCallback = Callable[[list[tuple[SortJob, str, "str | None"]]], None]
"""Called from the worker thread with a batch of ``(job, status, miss_reason)``."""
EventCallback = Callable[[str, str], None]


def open_port(url: str, baud: int) -> serial.SerialBase:
    """Open a device path or pyserial URL (``socket://``, ``loop://``, ``rfc2217://``...)."""
    try:
        port = serial.serial_for_url(url, baudrate=baud, timeout=0.1, write_timeout=2.0)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise SerialLinkError(f"cannot open serial port {url}: {exc}") from None
    return port


class SorterLink:
    """Owns the serial port. ``start()``, ``submit(job)``, ``stop(drain_s)``.

    Times: ``ack_timeout_ms`` per attempt, ``reconnect_s`` between reopen attempts,
    ``ping_interval_s`` of idle before a ``PING``.
    """

    def __init__(
        self,
        url: str,
        *,
        on_done: DoneCallback,
        on_event: EventCallback,
        metrics: Metrics,
        baud: int = sc.BAUD,
        ack_timeout_ms: int = 250,
        retries: int = 5,
        window: int = 4,
        ping_interval_s: float = 2.0,
        reconnect_s: float = 0.5,
        compensate_latency: bool = True,
        max_gate: int = 0,
    ) -> None:
        self.url = url
        self.baud = baud
        self.ack_timeout = ack_timeout_ms / 1000.0
        self.retries = retries
        self.window = window
        self.ping_interval = ping_interval_s
        self.reconnect_s = reconnect_s
        self.compensate_latency = compensate_latency
        self.max_gate = max_gate
        self._on_done = on_done
        self._on_event = on_event
        self._m = metrics
        self._inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._state = threading.Lock()
        """Held by whoever acts on the protocol state: the worker, or a submitter writing directly."""
        self._post_lock = threading.Lock()
        self._queued_bursts = 0
        """Bursts in the inbox, not yet taken by the worker (under ``_post_lock``)."""
        self._closed = False
        """Set by the worker as it ends: submitters no longer write."""
        self._waiting: collections.deque[SortJob] = collections.deque()
        self._inflight: dict[int, SortJob] = {}
        self._recent_done: collections.OrderedDict[int, str] = collections.OrderedDict()
        self._done_batch: list[tuple[SortJob, str, str | None]] = []
        self._done_flush_at = 0.0
        self._port: serial.SerialBase | None = None
        self._gen = 0
        self._reconnect_at = 0.0
        self._last_rx = 0.0
        self._last_tx = 0.0
        self._ping_sent: float | None = None
        self._sorter_ok = False
        self._stop_at: float | None = None
        self._next_full_scan = 0.0
        self._thread = threading.Thread(target=self._run, name="sorter-link", daemon=True)
        self._done_q: queue.Queue[list[tuple[SortJob, str, str | None]] | None] = queue.Queue()
        self._finisher = threading.Thread(target=self._finish_loop, name="sorter-done", daemon=True)
        self.up = False
        self.fw = ""
        self.bins = 0
        self.jammed = False
        self.full_gates: set[int] = set()

    # --- public, any thread ----------------------------------------------------------

    def start(self) -> None:
        """Open the port (raises :class:`SerialLinkError` if it cannot) and start the worker."""
        self._open(initial=True)
        self._finisher.start()
        self._thread.start()

    def submit(self, job: SortJob) -> None:
        self.submit_many([job])

    def submit_many(self, jobs: list[SortJob]) -> None:
        """Hand over a burst: its SORTs are written here, in the caller's thread, as far as the
        window allows (no thread hand-over between an item's decision and its write); the
        worker is then woken to time their ACKs. If the worker holds the state longer than
        ``SUBMIT_WAIT_S`` (reopening a port), the burst is queued for it instead, and later
        bursts queue behind it, so SORTs keep their order."""
        if not jobs:
            return
        if self._state.acquire(timeout=SUBMIT_WAIT_S):
            try:
                with self._post_lock:
                    direct = self._queued_bursts == 0 and not self._closed  # nothing queued before this burst
                if direct:
                    self._waiting.extend(jobs)
                    jobs = []
                    try:
                        now = time.monotonic()
                        self._expire(now)  # an item past its deadline is missed, never written late
                        if self._port is not None:
                            self._fill(now)
                    except Exception:  # the jobs are in the worker's hands now; it carries on
                        log.exception("writing SORTs from the submitter failed; the worker takes over")
                        self._m.inc("handler_errors_total")
            finally:
                self._state.release()
        if jobs:
            with self._post_lock:
                self._queued_bursts += 1
                self._inbox.put(("jobs", jobs))
        else:
            self._inbox.put(("wake", None))  # the worker times their ACKs and reports the expired

    def stop(self, drain_s: float) -> int:
        """Stop after every job is done or ``drain_s`` passed; returns the jobs left unfinished."""
        if not self._thread.is_alive():
            self._close()
            return len(self._waiting) + len(self._inflight)
        self._inbox.put(("stop", time.monotonic() + drain_s))
        self._thread.join(drain_s + 5.0)
        return len(self._waiting) + len(self._inflight)

    @property
    def backlog(self) -> int:
        """Jobs waiting or in flight (read without a lock: a gauge, not a decision input)."""
        return len(self._waiting) + len(self._inflight) + self._inbox.qsize()

    @property
    def sorter_responding(self) -> bool:
        return self._sorter_ok

    # --- worker thread ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._step():
                pass
        finally:
            with self._state:
                self._closed = True
                self._flush_done()
            self._done_q.put(None)
            self._finisher.join(30.0)
            with self._state:
                self._close()

    def _step(self) -> bool:
        """One wake-up of the worker; True when it should stop. A bug in one step is
        logged and counted, never the end of the worker (jobs stay recorded in the db)."""
        try:
            with self._state:
                timeout = self._next_wakeup(time.monotonic())
            try:
                first: tuple[str, Any] | None = self._inbox.get(timeout=timeout)
            except queue.Empty:
                first = None
            with self._state:
                return self._act(first)
        except Exception:
            log.exception("serial worker step failed")
            self._m.inc("handler_errors_total")
            time.sleep(0.1)
            return self._stop_at is not None and time.monotonic() >= self._stop_at

    def _act(self, first: tuple[str, Any] | None) -> bool:
        """The worker's turn, holding ``_state``: handle what arrived, then act once."""
        if first is not None:
            self._handle(*first)
            while True:  # drain whatever else arrived
                try:
                    kind, payload = self._inbox.get_nowait()
                except queue.Empty:
                    break
                self._handle(kind, payload)
        now = time.monotonic()
        if self._port is None and now >= self._reconnect_at:
            self._open(initial=False)
        self._expire(now)
        self._retransmit(now)
        self._fill(now)
        self._ping(now)
        if self._done_batch and (
            now >= self._done_flush_at or len(self._done_batch) >= DONE_BATCH_MAX or self._stop_at is not None
        ):
            self._flush_done()
        return self._stop_at is not None and ((not self._waiting and not self._inflight) or now >= self._stop_at)

    def _next_wakeup(self, now: float) -> float:
        wake = now + 0.25
        for job in self._inflight.values():
            wake = min(wake, job.retry_at, job.deadline_mono)
        if self._waiting:
            wake = min(wake, self._waiting[0].deadline_mono)
            if self._port is not None and len(self._inflight) < self.window:
                wake = now
        if self._port is None:
            wake = min(wake, self._reconnect_at)
        if self._done_batch:
            wake = min(wake, self._done_flush_at)
        return max(0.0, wake - now)

    def _handle(self, kind: str, payload: Any) -> None:
        if kind == "jobs":
            with self._post_lock:
                self._queued_bursts -= 1
            self._waiting.extend(payload)
        elif kind == "lines":
            gen, lines = payload
            if gen == self._gen:
                for raw in lines:
                    self._on_line(raw)
        elif kind == "down":
            gen, reason = payload
            if gen == self._gen:
                self._link_down(reason)
        elif kind == "stop":
            self._stop_at = payload
        # "wake": nothing to handle; the worker recomputes when to wake next

    # --- port ------------------------------------------------------------------------

    def _open(self, initial: bool) -> None:
        try:
            port = open_port(self.url, self.baud)
        except SerialLinkError as exc:
            if initial:
                raise
            self._reconnect_at = time.monotonic() + self.reconnect_s
            log.debug("%s", exc)
            return
        self._gen += 1
        self._port = port
        self.up = True
        self._m.set("serial_up", 1)
        now = time.monotonic()
        self._last_rx = now
        self._last_tx = 0.0
        self._ping_sent = None
        threading.Thread(target=self._reader, args=(port, self._gen), name="sorter-reader", daemon=True).start()
        if not initial:
            self._m.inc("serial_reconnects_total")
            log.warning("serial port %s is back; resuming with %d queued", self.url, len(self._waiting))
            self._on_event("serial_up", f"port {self.url} reopened")
        self._write(sc.ping_line(), now)
        self._ping_sent = now

    def _link_down(self, reason: str) -> None:
        if self._port is None:
            return
        log.warning(
            "serial port %s lost (%s); %d in flight go back to the queue", self.url, reason, len(self._inflight)
        )
        self._close()
        self._gen += 1
        for job in sorted(self._inflight.values(), key=lambda j: j.sort_id, reverse=True):
            self._waiting.appendleft(job)
        self._inflight.clear()
        self._reconnect_at = time.monotonic() + self.reconnect_s
        self._on_event("serial_down", f"port {self.url} lost: {reason}")  # last: the state is sound if it raises

    def _close(self) -> None:
        port, self._port = self._port, None
        self.up = False
        self._sorter_ok = False
        self._m.set("serial_up", 0)
        if port is not None:
            try:
                port.close()
            except Exception:
                pass

    def _reader(self, port: serial.SerialBase, gen: int) -> None:
        buf = b""
        while gen == self._gen:
            try:
                data = port.read(port.in_waiting or 1)
            except Exception as exc:  # SerialException, OSError, or a closed fd: all mean "gone"
                if gen == self._gen:
                    self._inbox.put(("down", (gen, str(exc) or type(exc).__name__)))
                return
            if not data:
                continue
            buf += data
            if b"\n" in buf:
                *lines, buf = buf.split(b"\n")
                self._inbox.put(("lines", (gen, lines)))
            if len(buf) > 4 * sc.MAX_LINE:
                self._m.inc("serial_rx_errors_total", labels={"kind": "overlong"})
                buf = b""

    def _write(self, line: bytes, now: float) -> bool:
        if self._port is None:
            return False
        try:
            self._port.write(line)
        except Exception as exc:
            self._link_down(f"write failed: {exc}")
            return False
        self._last_tx = now
        return True

    # --- protocol --------------------------------------------------------------------

    def _on_line(self, raw: bytes) -> None:
        self._last_rx = time.monotonic()
        if not raw.strip():
            return
        try:
            body = sc.decode(raw)
            msg = sc.parse(body)
        except sc.ChecksumError as exc:
            self._m.inc("serial_rx_errors_total", labels={"kind": "checksum"})
            log.warning("sorter line with bad checksum ignored: %r", exc.body)
            return
        except ContractError as exc:
            self._m.inc("serial_rx_errors_total", labels={"kind": "syntax"})
            log.warning("sorter line ignored: %s", exc)
            return
        if msg.verb == "ACK":
            self._on_ack(msg.item_id)
        elif msg.verb == "NAK":
            self._on_nak(msg.item_id, msg.reason)
        elif msg.verb == "PONG":
            if not self._sorter_ok or msg.fw != self.fw or msg.bins != self.bins:
                log.info("sorter fw %s with %d gates is answering", msg.fw, msg.bins)
                if self.max_gate >= msg.bins:
                    text = f"config uses gate {self.max_gate} but the sorter has gates 0..{msg.bins - 1}"
                    log.warning("%s: it will NAK those items", text)
                    self._on_event("config_mismatch", text)
            self._sorter_ok = True
            self._ping_sent = None
            self.fw, self.bins = msg.fw, msg.bins
            self._m.set("sorter_responding", 1)
        elif msg.verb == "EVT":
            self._on_evt(msg.text)
        else:
            self._m.inc("serial_rx_errors_total", labels={"kind": "unexpected"})
            log.warning("unexpected %s from the sorter", msg.verb)

    def _on_ack(self, sort_id: int) -> None:
        self._sorter_ok = True
        job = self._inflight.pop(sort_id, None)
        if job is None:
            past = self._recent_done.get(sort_id)
            if past == "acked":
                self._m.inc("serial_duplicate_acks_total")
            else:
                self._m.inc("serial_unexpected_acks_total")
                log.warning("ACK %d for an item that is not in flight (%s)", sort_id, past or "unknown")
                self._on_event("late_ack", f"ACK {sort_id} for an item already {past or 'unknown'}")
            return
        self._done(job, "acked", None)

    def _on_nak(self, sort_id: int, reason: str) -> None:
        self._m.inc("serial_naks_total", labels={"reason": reason})
        now = time.monotonic()
        if sort_id == 0:
            log.warning("sorter NAK 0 %s: writing every in-flight SORT again", reason)
            for pending in self._inflight.values():
                pending.retry_at = now
            return
        job = self._inflight.get(sort_id)
        if job is None:
            log.warning("NAK %d %s for an item not in flight", sort_id, reason)
            return
        log.warning("sorter NAK %d %s (attempt %d)", sort_id, reason, job.attempts)
        job.last_nak = reason
        if reason == "checksum":
            job.retry_at = now
        elif reason in RETRY_NAKS:
            job.retry_at = min(job.retry_at, now + self.ack_timeout)
        else:
            del self._inflight[sort_id]
            self._done(job, "missed", f"nak_{reason}")

    def _on_evt(self, text: str) -> None:
        parts = text.split()
        kind = parts[0] if parts else ""
        self._m.inc("sorter_events_total", labels={"event": kind or "empty"})
        if kind == "JAM":
            self.jammed = True
        elif kind in ("READY", "CLEARED"):
            self.jammed = False
            self.full_gates.clear()
        elif kind == "BIN_FULL" and len(parts) > 1 and parts[1].isascii() and parts[1].isdigit():
            self.full_gates.add(int(parts[1]))
        self._m.set("sorter_jammed", 1 if self.jammed else 0)
        log.warning("sorter event: %s", text) if kind in ("JAM", "BIN_FULL") else log.info("sorter event: %s", text)
        self._on_event("sorter_evt", text)

    def _done(self, job: SortJob, status: str, miss_reason: str | None) -> None:
        self._recent_done[job.sort_id] = status
        while len(self._recent_done) > 4096:
            self._recent_done.popitem(last=False)
        job.done_mono = time.monotonic()
        if not self._done_batch:
            self._done_flush_at = job.done_mono + DONE_BATCH_S
        self._done_batch.append((job, status, miss_reason))

    def _flush_done(self) -> None:
        """Hand the finished jobs to the finisher thread: their commit and decision messages
        never stand between a newly submitted job and its SORT write."""
        if not self._done_batch:
            return
        batch, self._done_batch = self._done_batch, []
        self._done_q.put(batch)

    def _finish_loop(self) -> None:
        """The finisher: ``on_done`` for each batch (merged with any queued behind it), in order."""
        while True:
            batch = self._done_q.get()
            last = batch is None
            while batch is not None and not last:
                try:
                    more = self._done_q.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    last = True
                else:
                    batch.extend(more)
            if batch:
                try:
                    self._on_done(batch)
                except Exception:
                    log.exception("recording %d finished item(s) failed", len(batch))
            if last:
                return

    def _expire(self, now: float) -> None:
        for sort_id in [i for i, j in self._inflight.items() if now >= j.deadline_mono]:
            job = self._inflight.pop(sort_id)
            self._done(job, "missed", f"nak_{job.last_nak}" if job.last_nak else "no_ack")
        # The queue is in arrival order, so deadlines mostly rise along it: look at the head
        # every time and scan it all only a few times a second (recovered items may differ).
        full_scan = now >= self._next_full_scan
        if self._waiting and (full_scan or now >= self._waiting[0].deadline_mono):
            self._next_full_scan = now + 0.2
            keep: collections.deque[SortJob] = collections.deque()
            for job in self._waiting:
                if now >= job.deadline_mono:
                    self._done(job, "missed", "no_ack" if job.attempts else "deadline")
                else:
                    keep.append(job)
            self._waiting = keep

    def _retransmit(self, now: float) -> None:
        for sort_id, job in list(self._inflight.items()):
            if now < job.retry_at or self._port is None:
                continue
            if job.attempts > self.retries:
                del self._inflight[sort_id]
                self._done(job, "missed", f"nak_{job.last_nak}" if job.last_nak else "no_ack")
                continue
            self._m.inc("serial_retries_total")
            log.info("no ACK for SORT %d after %d attempt(s); writing it again", sort_id, job.attempts)
            self._send(job, now)

    def _fill(self, now: float) -> None:
        """Move queued jobs into the window and write their SORTs in one write call."""
        batch: list[SortJob] = []
        while self._waiting and self._port is not None and len(self._inflight) < self.window:
            job = self._waiting.popleft()
            self._inflight[job.sort_id] = job
            batch.append(job)
        if batch:
            self._send_many(batch, now)

    def _send(self, job: SortJob, now: float) -> bool:
        return self._send_many([job], now)

    def _send_many(self, jobs: list[SortJob], now: float) -> bool:
        for job in jobs:
            if job.delay_ms is None:
                elapsed_ms = (now - job.received_mono) * 1000.0
                spent = elapsed_ms + (job.device_latency_ms if self.compensate_latency else 0.0)
                remaining = job.belt_delay_ms - spent
                if remaining < 0:
                    self._m.inc("late_items_total")
                job.delay_ms = int(min(max(remaining, 0.0), sc.DELAY_MAX_MS))
                job.line = sc.sort_line(job.sort_id, job.gate, job.delay_ms)
            job.attempts += 1
            job.last_write_mono = now
            job.retry_at = now + self.ack_timeout
        if not self._write(b"".join(job.line for job in jobs), now):
            return False
        self._m.inc("serial_writes_total", len(jobs))
        for job in jobs:
            if job.first_write_mono is None:
                job.first_write_mono = now
                self._m.observe("receipt_to_write_seconds", now - job.received_mono)
        return True

    def _ping(self, now: float) -> None:
        if self._port is None:
            return
        if self._ping_sent is not None:
            if now - self._ping_sent > max(1.0, 4 * self.ack_timeout) and now - self._last_rx > self.ping_interval:
                if self._sorter_ok:
                    log.warning("sorter on %s is not answering PING", self.url)
                    self._on_event("sorter_silent", f"no PONG on {self.url}")
                self._sorter_ok = False
                self._m.set("sorter_responding", 0)
                self._ping_sent = None
            return
        if self._inflight or now - max(self._last_rx, self._last_tx) < self.ping_interval:
            return
        if self._write(sc.ping_line(), now):
            self._ping_sent = now

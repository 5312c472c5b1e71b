"""The virtual sorter: a serial sorter MCU on a pty pair (serial contract v1).

The host controller opens :attr:`VirtualSorter.device_path` exactly as it would open
``/dev/ttyUSB0`` and speaks ``sortcam.serial_contract`` to it. The sorter checks each
line's checksum (``NAK <id> checksum``), schedules a ``SORT`` to drop into its gate's
bin after ``delay_ms`` of belt travel, treats a repeated ``<id>`` as already done (ACK
again, never a second drop), answers ``PING`` with ``PONG <fw> <gates>``, and reports
``EVT READY``, ``EVT JAM``, ``EVT CLEARED``, ``EVT BIN_FULL <gate>``.

Faults (:class:`FaultPlan`, ``--fault`` on the command line) make it misbehave the way
real sorters do so the controller's fault paths can be driven:

- ``jam[:AFTER[:FOR_S]]``: after ``AFTER`` drops the mechanism jams (``EVT JAM``); every
  ``SORT`` gets ``NAK <id> jam`` until it clears after ``FOR_S`` seconds (``EVT CLEARED``;
  default: never, call :meth:`VirtualSorter.clear_jam`).
- ``bin-full:GATE[:CAPACITY]``: gate ``GATE`` holds ``CAPACITY`` items (default 0); then
  ``EVT BIN_FULL <gate>`` and ``NAK <id> full`` for that gate.
- ``no-answer[:COUNT]``: the next ``COUNT`` ``SORT`` lines (default 1) get no answer at
  all (the line is still acted on, as when an ACK is lost on the wire).
- ``drop-line[:COUNT]``: the next ``COUNT`` ``SORT`` lines (default 1) are lost before the
  sorter reads them: no answer and no action.
- ``bad-checksum[:COUNT]``: the next ``COUNT`` ``ACK``/``NAK`` answers (default 1) go out
  with a wrong checksum.

Wire faults hit ``SORT`` exchanges only, so a controller's ``PING`` never spends them and
a test knows which item meets the fault.

Everything that landed is kept: :attr:`VirtualSorter.bins` (gate -> item ids, in drop
order) and :attr:`VirtualSorter.drops`. Times are ``time.monotonic()`` seconds.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, field

from sortcam import serial_contract as sc
from sortcam.errors import ContractError, SerialLinkError, UsageError

log = logging.getLogger(__name__)

DEFAULT_GATES = 6
DEFAULT_FW = "simsorter-1"
FAULT_KINDS: tuple[str, ...] = ("jam", "bin-full", "no-answer", "drop-line", "bad-checksum")


@dataclass
class FaultPlan:
    """Injected faults; counters go down as faults are spent (see module doc)."""

    jam_after: int | None = None
    """Jam once this many items have dropped (0 = jammed from the start); None = never."""
    jam_for_s: float | None = None
    """Seconds a jam lasts; None = until :meth:`VirtualSorter.clear_jam`."""
    bin_capacity: dict[int, int] = field(default_factory=dict)
    """Gate -> items its bin holds before it reports full."""
    no_answer: int = 0
    """Lines still to act on without answering."""
    drop_line: int = 0
    """Lines still to lose unread."""
    bad_checksum: int = 0
    """Answers still to send with a corrupted checksum."""


def _count(text: str, what: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise UsageError(f"bad fault {what}: {text!r} is not a non-negative integer")
    return int(text)


def parse_faults(specs: list[str] | None) -> FaultPlan:
    """Build a :class:`FaultPlan` from ``--fault`` strings (see module doc for the syntax)."""
    plan = FaultPlan()
    for spec in specs or []:
        kind, *args = spec.strip().split(":")
        if kind not in FAULT_KINDS:
            raise UsageError(f"unknown fault {kind!r}: expected one of {', '.join(FAULT_KINDS)}")
        if kind == "jam":
            if len(args) > 2:
                raise UsageError("fault jam takes at most AFTER and FOR_S: jam[:AFTER[:FOR_S]]")
            plan.jam_after = _count(args[0], "jam AFTER") if args else 0
            if len(args) == 2:
                try:
                    plan.jam_for_s = float(args[1])
                except ValueError:
                    raise UsageError(f"bad fault jam FOR_S: {args[1]!r} is not a number") from None
                if not plan.jam_for_s >= 0:
                    raise UsageError("fault jam FOR_S must be >= 0")
        elif kind == "bin-full":
            if not 1 <= len(args) <= 2:
                raise UsageError("fault bin-full needs a gate: bin-full:GATE[:CAPACITY]")
            gate = _count(args[0], "bin-full GATE")
            if gate > sc.GATE_MAX:
                raise UsageError(f"fault bin-full gate {gate} outside 0..{sc.GATE_MAX}")
            plan.bin_capacity[gate] = _count(args[1], "bin-full CAPACITY") if len(args) == 2 else 0
        else:
            if len(args) > 1:
                raise UsageError(f"fault {kind} takes at most a COUNT: {kind}[:COUNT]")
            n = _count(args[0], f"{kind} COUNT") if args else 1
            setattr(plan, kind.replace("-", "_"), getattr(plan, kind.replace("-", "_")) + n)
    return plan


@dataclass(frozen=True)
class Drop:
    """One item that fell into a bin."""

    item_id: int
    gate: int
    accepted_at: float
    dropped_at: float


DropCallback = Callable[[Drop], None]


class VirtualSorter:
    """A sorter MCU on a pty pair, served by a background thread.

    ``gates`` is the number of gates (bins) 1..16; ``on_drop`` is called from the sorter
    thread for every item that lands (exceptions in it are logged, never kill the thread).
    """

    def __init__(
        self,
        gates: int = DEFAULT_GATES,
        faults: FaultPlan | None = None,
        fw: str = DEFAULT_FW,
        on_drop: DropCallback | None = None,
    ) -> None:
        if not 1 <= gates <= sc.GATE_MAX + 1:
            raise UsageError(f"gates must be 1..{sc.GATE_MAX + 1}, got {gates}")
        self.gates = gates
        self.faults = faults or FaultPlan()
        self.fw = fw
        self.on_drop = on_drop
        self.bins: dict[int, list[int]] = {g: [] for g in range(gates)}
        self.drops: list[Drop] = []
        self.received: list[str] = []
        """Every raw line received (without ``\\n``), faults included, for tests and the report."""
        self.sent: list[str] = []
        self.naks: list[tuple[int, str]] = []
        self.pending: dict[int, tuple[int, float, float]] = {}
        """Item id -> (gate, accepted_at, due_at) for items on the belt."""
        self.done: set[int] = set()
        self.duplicate_sorts = 0
        """``SORT`` lines for an id already accepted (answered ACK, no second drop)."""
        self.jammed = False
        self._jam_until: float | None = None
        self._full_reported: set[int] = set()
        self._lock = threading.RLock()
        self._master: int | None = None
        self._slave: int | None = None
        self.device_path = ""
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._buf = b""

    # --- lifecycle ----------------------------------------------------------------

    def start(self) -> VirtualSorter:
        """Open the pty pair, announce ``EVT READY`` and serve in a daemon thread."""
        try:
            master, slave = os.openpty()
        except OSError as exc:
            raise SerialLinkError(f"cannot open a pty pair: {exc}") from None
        # Raw mode on our end of the slave: no echo of what we write back to us, no
        # newline translation, before the controller opens it (pyserial sets raw too).
        tty.setraw(slave)
        self._master, self._slave = master, slave
        self.device_path = os.ttyname(slave)
        if self.faults.jam_after == 0:
            self.jammed = True
            self._arm_jam_clear()
        self._thread = threading.Thread(target=self._serve, name="sortcam-sorter", daemon=True)
        self._thread.start()
        self._send("EVT JAM" if self.jammed else "EVT READY")
        log.info("virtual sorter on %s (%d gates)", self.device_path, self.gates)
        return self

    def stop(self) -> None:
        """Stop serving and close the pty (idempotent); pending items stay undropped."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        for fd in (self._master, self._slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = None

    def __enter__(self) -> VirtualSorter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- operator actions ---------------------------------------------------------

    def clear_jam(self) -> None:
        """Clear a jam (``EVT CLEARED``); SORTs are accepted again."""
        with self._lock:
            if self.jammed:
                self.jammed = False
                self._jam_until = None
                self._send("EVT CLEARED")

    def empty_bin(self, gate: int) -> None:
        """Empty a bin: its capacity fault no longer applies."""
        with self._lock:
            self.faults.bin_capacity.pop(gate, None)
            self._full_reported.discard(gate)
            self._send("EVT READY")

    def contents(self) -> dict[int, list[int]]:
        """A copy of what each gate's bin holds (item ids in drop order)."""
        with self._lock:
            return {g: list(ids) for g, ids in self.bins.items()}

    def wait_idle(self, timeout_s: float) -> bool:
        """True once no item is on the belt; False after ``timeout_s`` seconds."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                if not self.pending:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    # --- serving ------------------------------------------------------------------

    def _arm_jam_clear(self) -> None:
        if self.faults.jam_for_s is not None:
            self._jam_until = time.monotonic() + self.faults.jam_for_s

    def _serve(self) -> None:
        assert self._master is not None
        while not self._stop.is_set():
            timeout = self._next_timeout()
            try:
                ready, _, _ = select.select([self._master], [], [], timeout)
            except (OSError, ValueError):
                break
            if ready:
                try:
                    chunk = os.read(self._master, 4096)
                except OSError:
                    # No reader on the other side yet (EIO on some kernels): wait and retry.
                    time.sleep(0.05)
                    continue
                self._buf += chunk
                while b"\n" in self._buf:
                    raw, self._buf = self._buf.split(b"\n", 1)
                    try:
                        self._on_line(raw)
                    except Exception:  # one bad line must never stop the sorter
                        log.exception("virtual sorter: error handling %r", raw)
                if len(self._buf) > sc.MAX_LINE * 4:
                    log.warning("virtual sorter: discarding %d bytes without a newline", len(self._buf))
                    self._buf = b""
            self._tick()

    def _next_timeout(self) -> float:
        with self._lock:
            dues = [due for _, _, due in self.pending.values()]
            if self._jam_until is not None:
                dues.append(self._jam_until)
        if not dues:
            return 0.1
        return max(0.0, min(0.1, min(dues) - time.monotonic()))

    def _tick(self) -> None:
        now = time.monotonic()
        landed: list[Drop] = []
        with self._lock:
            if self.jammed and self._jam_until is not None and now >= self._jam_until:
                self.jammed = False
                self._jam_until = None
                self._send("EVT CLEARED")
            for item_id, (gate, accepted, due) in sorted(self.pending.items(), key=lambda kv: kv[1][2]):
                if due > now:
                    continue
                del self.pending[item_id]
                drop = Drop(item_id, gate, accepted, now)
                self.bins[gate].append(item_id)
                self.drops.append(drop)
                landed.append(drop)
                if self.faults.jam_after is not None and not self.jammed and len(self.drops) == self.faults.jam_after:
                    self.jammed = True
                    self._arm_jam_clear()
                    self._send("EVT JAM")
                cap = self.faults.bin_capacity.get(gate)
                if cap is not None and len(self.bins[gate]) >= cap and gate not in self._full_reported:
                    self._full_reported.add(gate)
                    self._send(f"EVT BIN_FULL {gate}")
        for drop in landed:
            if self.on_drop is not None:
                try:
                    self.on_drop(drop)
                except Exception:
                    log.exception("virtual sorter: on_drop callback failed")

    def _send(self, body: str) -> None:
        line = sc.encode(body)
        with self._lock:
            if self.faults.bad_checksum > 0 and body.startswith(("ACK ", "NAK ")):
                self.faults.bad_checksum -= 1
                cs = sc.checksum(body) ^ 0x5A
                line = f"{body}*{cs:02X}\n".encode("ascii")
                log.info("virtual sorter fault: bad checksum on %r", body)
            self.sent.append(line.decode("ascii").rstrip("\n"))
            if self._master is None:
                return
            try:
                os.write(self._master, line)
            except OSError as exc:
                log.warning("virtual sorter: cannot write %r: %s", body, exc)

    def _on_line(self, raw: bytes) -> None:
        text = raw.decode("ascii", "replace").rstrip("\r")
        with self._lock:
            self.received.append(text)
            is_sort = text.startswith("SORT ")
            if is_sort and self.faults.drop_line > 0:
                self.faults.drop_line -= 1
                log.info("virtual sorter fault: line lost %r", text)
                return
            silent = is_sort and self.faults.no_answer > 0
            if silent:
                self.faults.no_answer -= 1
                log.info("virtual sorter fault: no answer to %r", text)
            answer = self._handle(text)
            if answer is not None and not silent:
                self._send(answer)

    def _handle(self, text: str) -> str | None:
        """Act on one line; return the answer body (None for lines that get none)."""
        if not text:
            return None
        try:
            body = sc.decode(text)
        except sc.ChecksumError as exc:
            return self._nak(_id_in(exc.body), "checksum")
        except ContractError:
            return self._nak(_id_in(text.split("*", 1)[0]), "syntax")
        try:
            msg = sc.parse(body)
        except ContractError:
            return self._nak(_id_in(body), "syntax")
        if msg.verb == "PING":
            return f"PONG {self.fw} {self.gates}"
        if msg.verb != "SORT":
            return self._nak(0, "syntax")
        item_id = msg.item_id
        if item_id in self.pending or item_id in self.done:
            self.duplicate_sorts += 1
            return f"ACK {item_id}"
        if msg.gate >= self.gates:
            return self._nak(item_id, "gate")
        if self.jammed:
            return self._nak(item_id, "jam")
        cap = self.faults.bin_capacity.get(msg.gate)
        if cap is not None and len(self.bins[msg.gate]) + self._on_belt_for(msg.gate) >= cap:
            if msg.gate not in self._full_reported:
                self._full_reported.add(msg.gate)
                self._send(f"EVT BIN_FULL {msg.gate}")
            return self._nak(item_id, "full")
        now = time.monotonic()
        self.pending[item_id] = (msg.gate, now, now + msg.delay_ms / 1000.0)
        self.done.add(item_id)
        return f"ACK {item_id}"

    def _on_belt_for(self, gate: int) -> int:
        return sum(1 for g, _, _ in self.pending.values() if g == gate)

    def _nak(self, item_id: int, reason: str) -> str:
        self.naks.append((item_id, reason))
        return f"NAK {item_id} {reason}"


def _id_in(body: str) -> int:
    """The ``<id>`` of a ``SORT`` body when it can be read, else 0 (contract: NAK id 0)."""
    parts = body.split(" ")
    if len(parts) >= 2 and parts[0] == "SORT" and parts[1].isascii() and parts[1].isdigit() and len(parts[1]) <= 10:
        value = int(parts[1])
        if sc.ID_MIN <= value <= sc.ID_MAX:
            return value
    return 0

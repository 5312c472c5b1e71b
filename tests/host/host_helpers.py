"""Helpers of the host tests: a scripted sorter on a pty master, an MQTT recorder and
publisher, and the controller as a real subprocess."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from sortcam import mqtt_contract as mc
from sortcam import serial_contract as sc
from sortcam.card import TRASHNET_BINS

REPO = Path(__file__).resolve().parents[2]

CLASSES = ["cardboard", "glass", "metal", "paper", "plastic", "trash"]
GATES = {"reject": 0, "paper": 1, "plastic": 2, "metal": 3, "glass": 4, "landfill": 5}
LABEL_GATE = {"cardboard": 1, "paper": 1, "plastic": 2, "metal": 3, "glass": 4, "trash": 5}


def wait_until(cond: Callable[[], Any], timeout_s: float = 15.0, what: str = "condition") -> Any:
    """Poll ``cond`` until it returns something truthy; fail the test after ``timeout_s``."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def classification(
    device: str = "cam1",
    boot: str = "b00t0001",
    seq: int = 0,
    label: str = "plastic",
    confidence: float = 0.9,
    latency_ms: int = 40,
) -> bytes:
    """A valid classification payload, as the firmware writes it."""
    others = [c for c in CLASSES if c != label][:2]
    top = [(label, confidence)] + [(o, (1 - confidence) / 2) for o in others]
    class_id = CLASSES.index(label) if label in CLASSES else 0
    return mc.encode_classification(
        device=device,
        boot=boot,
        seq=seq,
        label=label,
        class_id=class_id,
        confidence=confidence,
        top=top,
        latency_ms=latency_ms,
        model="0123456789ab",
    )


class ScriptedSorter:
    """The sorter MCU, played on a pty master fd in a thread.

    ``behaviour(item_id, nth)`` decides the answer to the ``nth`` (1-based) copy of a SORT:
    ``"ack"``, ``"nak:<reason>"``, ``"silent"``, ``"garble"`` (ACK with a broken checksum).
    Repeated ids are "already done": the gate moves once per id (``moves``).
    """

    def __init__(
        self,
        master_fd: int,
        behaviour: Callable[[int, int], str] | None = None,
        memory_of: ScriptedSorter | None = None,
    ) -> None:
        self.fd = master_fd
        self.behaviour = behaviour or (lambda item_id, nth: "ack")
        # the same MCU seen through a new USB connection keeps what it already did
        self.sorts: list[sc.Message] = memory_of.sorts if memory_of else []
        self.moves: dict[int, int] = memory_of.moves if memory_of else {}  # id -> gate, first ACKed copy only
        self.copies: dict[int, int] = memory_of.copies if memory_of else {}
        self.pings = 0
        self.bad_lines: list[bytes] = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def send(self, line: bytes) -> None:
        try:
            os.write(self.fd, line)
        except OSError:
            pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def _run(self) -> None:
        buf = b""
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(self.fd, 4096)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                self._on_line(raw)

    def _on_line(self, raw: bytes) -> None:
        try:
            msg = sc.parse(sc.decode(raw))
        except sc.ChecksumError:
            self.send(sc.nak_line(0, "checksum"))
            return
        except Exception:
            with self.lock:
                self.bad_lines.append(raw)
            return
        if msg.verb == "PING":
            self.pings += 1
            self.send(sc.pong_line("test-1.0", 6))
            return
        if msg.verb != "SORT":
            return
        with self.lock:
            self.sorts.append(msg)
            nth = self.copies.get(msg.item_id, 0) + 1
            self.copies[msg.item_id] = nth
            action = self.behaviour(msg.item_id, nth)
            if action == "ack" and msg.item_id not in self.moves:
                self.moves[msg.item_id] = msg.gate
        if action == "ack":
            self.send(sc.ack_line(msg.item_id))
        elif action.startswith("nak:"):
            self.send(sc.nak_line(msg.item_id, action[4:]))
        elif action == "garble":
            good = sc.ack_line(msg.item_id)
            self.send(good[:-3] + (b"00" if good[-3:-1] != b"00" else b"11") + b"\n")


class Mqtt:
    """A test-side MQTT client: records decisions, publishes classifications (QoS 1)."""

    def __init__(
        self,
        url: str,
        client_id: str = "",
        topics: tuple[str, ...] = ("sortcam/line/+/decision",),
        persistent: bool = False,
    ) -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.topics = topics
        self.connected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"t-{os.getpid()}-{id(self)}",
            clean_session=not persistent,
            protocol=mqtt.MQTTv311,
        )
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.reconnect_delay_set(1, 2)
        self.client.connect(host, int(port), keepalive=10)
        self.client.loop_start()
        wait_until(self.connected.is_set, 10, "test client connection")

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        for t in self.topics:
            client.subscribe(t, qos=1)
        self.connected.set()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self.lock:
            self.messages.append((msg.topic, msg.payload))

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=qos, retain=retain)

    def decisions(self, status: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            items = [json.loads(p) for t, p in self.messages if t.endswith("/decision")]
        return [d for d in items if status is None or d.get("status") == status]

    def final(self) -> dict[tuple[str, str, int], dict[str, Any]]:
        """Last acked/missed/rejected decision per item identity."""
        out = {}
        for d in self.decisions():
            if d["status"] in ("acked", "missed", "rejected"):
                out[(d["device"], d["boot"], d["seq"])] = d
        return out

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def write_config(path: Path, **overrides: Any) -> Path:
    """A controller config for tests: no model card needed, short timeouts."""
    cfg: dict[str, Any] = {
        "classes": CLASSES,
        "labels": dict(TRASHNET_BINS),
        "biodegradable": {
            "cardboard": True,
            "paper": True,
            "plastic": False,
            "metal": False,
            "glass": False,
            "trash": False,
        },
        "gates": GATES,
        "threshold": 0.6,
        "belt_delay_ms": {"default": 1500, "cam2": 900},
        "serial": {"ack_timeout_ms": 100, "retries": 3, "window": 4, "ping_interval_s": 0.5, "reconnect_s": 0.2},
        "items": {"deadline_ms": 4000},
        "mqtt": {"keepalive_s": 5},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    path.write_text(json.dumps(cfg))
    return path


class ControllerProcess:
    """``python -m sortcam.cli host ...`` as a real subprocess, its log in a file."""

    def __init__(
        self, workdir: Path, broker_url: str, serial: str, config: Path, line: str = "L1", extra: tuple[str, ...] = ()
    ) -> None:
        self.workdir = workdir
        self.db = workdir / "host.db"
        self.log_path = workdir / "controller.log"
        self.args = [
            sys.executable,
            "-m",
            "sortcam.cli",
            "-v",
            "host",
            "--broker",
            broker_url,
            "--serial",
            serial,
            "--line",
            line,
            "--config",
            str(config),
            "--state-db",
            str(self.db),
            "--drain-s",
            "1",
            *extra,
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    def start(self, wait_ready: bool = True) -> ControllerProcess:
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        logf = open(self.log_path, "ab")  # noqa: SIM115 (handed to the child)
        self.proc = subprocess.Popen(self.args, stdout=logf, stderr=subprocess.STDOUT, cwd=self.workdir)
        logf.close()
        if wait_ready:
            wait_until(lambda: "controller ready" in self.log() or self.proc.poll() is not None, 20, "controller ready")
            assert self.proc.poll() is None, f"controller exited early:\n{self.log()}"
        return self

    def log(self) -> str:
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as f:
            f.seek(self._log_offset)
            return f.read().decode(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"controller did not stop on {sig}:\n{self.log()[-3000:]}") from None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def events(self, *args: str) -> list[dict[str, Any]]:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "sortcam.cli",
                "host",
                "events",
                "--db",
                str(self.db),
                "--json",
                "--last",
                "0",
                *args,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]

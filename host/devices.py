"""The devices a controller has heard of, from their retained status (and Last Will) and
their classifications: ``online``, ``offline``, or ``stale`` (online, but silent for
``stale_after_s``). Thread-safe: paho's and the decide thread write, housekeeping and the
metrics scrape read.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("sortcam.host")

ChangeCallback = Callable[[str, str], None]
"""Called with ``(device, what)`` (``"cam1 offline"``, ``"cam1 stale"``) when a state changes."""


@dataclass
class DeviceState:
    state: str = "unknown"
    last_seen: float = 0.0
    """``time.time()`` of the last status or classification."""
    fw: str = ""
    model: str = ""
    stale: bool = False


class DeviceTable:
    """Device id -> :class:`DeviceState`; ``on_change`` records each change (the event log)."""

    def __init__(self, stale_after_s: float, on_change: ChangeCallback) -> None:
        self.stale_after_s = stale_after_s
        self._on_change = on_change
        self._lock = threading.Lock()
        self._devices: dict[str, DeviceState] = {}

    def status(self, device: str, data: dict[str, Any]) -> None:
        """A validated status message from ``device``."""
        with self._lock:
            dev = self._devices.setdefault(device, DeviceState())
            changed = dev.state != data["state"]
            dev.state = data["state"]
            dev.last_seen = time.time()
            dev.stale = False
            dev.fw = str(data.get("fw", dev.fw))
            dev.model = str(data.get("model", dev.model))
        if changed:
            log.info("device %s is %s", device, data["state"])
            self._on_change(device, f"{device} {data['state']}")

    def seen(self, device: str) -> None:
        """A valid classification from ``device``: it is online."""
        with self._lock:
            dev = self._devices.setdefault(device, DeviceState())
            dev.last_seen = time.time()
            dev.state = "online"
            dev.stale = False

    def check_stale(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        newly: list[tuple[str, float]] = []
        with self._lock:
            for name, dev in self._devices.items():
                stale = dev.state == "online" and now - dev.last_seen > self.stale_after_s
                if stale and not dev.stale:
                    newly.append((name, now - dev.last_seen))
                dev.stale = stale
        for name, silent_s in newly:
            log.warning("device %s is stale: nothing for %.0f s", name, silent_s)
            self._on_change(name, f"{name} stale")

    def states(self) -> list[tuple[str, str]]:
        """``(device, state)`` with ``stale`` for a silent online device (the ``devices`` gauge)."""
        with self._lock:
            return [(name, "stale" if dev.stale else dev.state) for name, dev in self._devices.items()]

    def snapshot(self) -> dict[str, DeviceState]:
        """A copy of the table."""
        with self._lock:
            return copy.deepcopy(self._devices)

"""Shared pytest fixtures for every area (tests/<area>/test_*.py).

Area-specific fixtures live in tests/<area>/conftest.py.
"""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``hw`` tests need a board: they run only with SORTCAM_HW=1 (and are reported as skipped)."""
    if os.environ.get("SORTCAM_HW") == "1":
        return
    skip = pytest.mark.skip(reason="needs a board: set SORTCAM_HW=1")
    for item in items:
        if "hw" in item.keywords:
            item.add_marker(skip)


# --- shared fixtures: a real mosquitto broker and pty pairs (added by the host engineer) ---

import shutil  # noqa: E402
import subprocess  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

from sortcam.net import free_port, wait_port  # noqa: E402

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


class MosquittoBroker:
    """A real ``mosquitto`` on a fixed free loopback port with persistence on.

    ``stop()`` is a clean SIGTERM (mosquitto writes its persistence file, so queued QoS 1
    messages and persistent sessions survive ``start()`` again on the same port);
    ``kill()`` is SIGKILL. ``url`` is ``mqtt://127.0.0.1:PORT``.
    """

    def __init__(self, workdir: Path, port: int | None = None, extra_conf: str = "") -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        user = "user root\n" if os.geteuid() == 0 else ""
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n{user}"
            f"persistence true\npersistence_location {workdir}/\nautosave_interval 1\n"
            "max_queued_messages 0\nmax_inflight_messages 100\n"
            f"log_dest file {self.log}\nlog_type error\nlog_type warning\nlog_type notice\n{extra_conf}"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> MosquittoBroker:
        if self.proc is not None and self.proc.poll() is None:
            return self
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        if not wait_port("127.0.0.1", self.port, timeout_s):
            self.proc.kill()
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            log_text = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"mosquitto did not start on {self.port}: {err} {log_text[-2000:]}")
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout_s)
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture()
def mqtt_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A started :class:`MosquittoBroker` (persistence on) for one test; stopped afterwards."""
    if not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    broker = MosquittoBroker(tmp_path / "mosquitto").start()
    try:
        yield broker
    finally:
        broker.kill()


class PtyPair:
    """A pty pair whose slave is reachable through a stable symlink ``path``.

    The test plays the device on ``master`` (a raw fd); the program under test opens
    ``path``. ``unplug()`` closes the master and removes the link (the slave side sees
    EIO/EOF, like a USB serial adapter pulled out); ``replug()`` makes a new pair and
    points ``path`` at the new slave, so a program that reopens ``path`` finds it again.
    """

    def __init__(self, workdir: Path, name: str = "ttySORT") -> None:
        self.path = workdir / name
        self.master = -1
        self.slave = -1
        self.replug()

    def replug(self) -> None:
        import tty

        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(self.slave)
        tmp = self.path.with_name(self.path.name + ".new")
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(os.ttyname(self.slave))
        tmp.replace(self.path)

    def unplug(self) -> None:
        if self.path.is_symlink():
            self.path.unlink()
        self.close()

    def close(self) -> None:
        for fd in (self.master, self.slave):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.master = self.slave = -1


@pytest.fixture()
def pty_pair(tmp_path: Path) -> Iterator[PtyPair]:
    """A :class:`PtyPair`; the program under test opens ``pty_pair.path``."""
    pair = PtyPair(tmp_path)
    try:
        yield pair
    finally:
        pair.close()

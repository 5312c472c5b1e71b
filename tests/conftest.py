"""Shared pytest fixtures for every area (tests/<area>/test_*.py).

Area-specific fixtures live in tests/<area>/conftest.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``hw`` tests need a board: they run only with SORTCAM_HW=1 (and are reported as skipped)."""
    if os.environ.get("SORTCAM_HW") == "1":
        return
    skip = pytest.mark.skip(reason="needs a board: set SORTCAM_HW=1")
    for item in items:
        if "hw" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own state folder (:mod:`sortcam.state`): a command run without --state-db or
    --data writes there, never into the user's ~/.local/state; child processes inherit it."""
    state = tmp_path / "state"
    monkeypatch.setenv("SORTCAM_STATE_DIR", str(state))
    return state


# --- shared fixtures: a real mosquitto broker and pty pairs (added by the host engineer) ---

from collections.abc import Iterator  # noqa: E402

from sortcam.mosquitto import Mosquitto, find_mosquitto  # noqa: E402


@pytest.fixture()
def mqtt_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A started real mosquitto (sortcam's own launcher) for one test; killed afterwards.

    Persistence is on: ``stop()`` is a clean SIGTERM (mosquitto writes its persistence file,
    so queued QoS 1 messages and persistent sessions survive ``start()`` again on the same
    port); ``kill()`` is SIGKILL. ``url`` is ``mqtt://127.0.0.1:PORT``; ``conf`` may be
    edited between ``stop()`` and ``start()``.
    """
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    broker = Mosquitto(workdir=tmp_path / "mosquitto", persistence=True).start(timeout_s=10)
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

"""mosquitto as a child process: the one launcher for the demo, ``sortcam bench host`` and the tests.

:class:`Mosquitto` writes its own config (a loopback listener, anonymous access, no limit on
the messages queued for a persistent session), waits until the port accepts connections and
stops the broker cleanly (SIGTERM, then SIGKILL). With ``persistence=True`` and a ``workdir``
the broker keeps its sessions and queued QoS 1 messages across :meth:`stop` and :meth:`start`
on the same port, which is how the tests restart a broker under a running line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from sortcam.errors import BrokerError, DependencyError
from sortcam.net import free_port, wait_port

MOSQUITTO_PATHS: tuple[str, ...] = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto")
START_TIMEOUT_S = 15.0


def find_mosquitto() -> str | None:
    """Path of the mosquitto binary, or None."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in MOSQUITTO_PATHS if Path(p).is_file()), None)


class Mosquitto:
    """mosquitto on ``host:port`` (a free port unless given) with a config written by this class.

    ``workdir`` holds ``mosquitto.conf`` (written once, when the folder is first used, so a
    caller may edit it between :meth:`stop` and :meth:`start`), ``mosquitto.log`` and, with
    ``persistence``, the persistence file. Without ``workdir`` a temporary folder lives from
    :meth:`start` to :meth:`stop`. ``extra_conf`` lines are appended to the config.
    ``tcp_nodelay`` (``set_tcp_nodelay true``) turns Nagle's algorithm off on client sockets, as
    docs/host.md advises for a line's broker: with it on, mosquitto's small PUBLISH packets
    wait for the TCP ACK of the one before, and items reach the controller in 40 ms clumps.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        exe: str | None = None,
        workdir: Path | None = None,
        persistence: bool = False,
        extra_conf: str = "",
        tcp_nodelay: bool = True,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.exe = exe or find_mosquitto()
        self.persistence = persistence
        self.extra_conf = extra_conf
        self.tcp_nodelay = tcp_nodelay
        self.workdir = workdir
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        if workdir is not None:
            self._write_conf(workdir)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def conf(self) -> Path:
        """The config file (in ``workdir``, or in the temporary folder while started)."""
        return self._dir() / "mosquitto.conf"

    @property
    def log(self) -> Path:
        return self._dir() / "mosquitto.log"

    def _dir(self) -> Path:
        if self.workdir is not None:
            return self.workdir
        if self._tmp is None:
            raise BrokerError("mosquitto has no folder before start()")
        return Path(self._tmp.name)

    def _write_conf(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        # As root, mosquitto would drop to the `mosquitto` user and could not write its files here.
        user = "user root\n" if hasattr(os, "geteuid") and os.geteuid() == 0 else ""
        keep = (
            f"persistence true\npersistence_location {folder}/\nautosave_interval 1\n"
            if self.persistence
            else "persistence false\n"
        )
        nodelay = "set_tcp_nodelay true\n" if self.tcp_nodelay else ""
        (folder / "mosquitto.conf").write_text(
            f"listener {self.port} {self.host}\nallow_anonymous true\n{user}{keep}"
            # 0: no limit on what is queued for a persistent session (the default, 1000, drops the rest)
            "max_queued_messages 0\nmax_inflight_messages 100\n"
            f"{nodelay}"
            f"log_dest file {folder / 'mosquitto.log'}\nlog_type error\nlog_type warning\nlog_type notice\n"
            f"{self.extra_conf}"
        )

    def start(self, timeout_s: float = START_TIMEOUT_S) -> Mosquitto:
        """Start it and wait until the port accepts connections (:class:`BrokerError` if it does not)."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        if not self.exe:
            raise DependencyError("mosquitto is not installed (Debian: apt-get install mosquitto; or scripts/setup.sh)")
        if self.workdir is None and self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="sortcam-mosquitto-")
            self._write_conf(Path(self._tmp.name))
        # Own session: a Ctrl-C in the demo's terminal goes to the demo, which then stops the
        # broker itself once the line has settled, instead of the broker dying mid-run.
        self.proc = subprocess.Popen(
            [self.exe, "-c", str(self.conf)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while self.proc.poll() is None and time.monotonic() < deadline:
            if wait_port(self.host, self.port, 0.2):
                return self
        # It exited (a bad config, the port taken) or never listened: say why, in one line.
        code = self.proc.poll()
        err = self.proc.stderr.read() if code is not None and self.proc.stderr is not None else b""
        log_text = self.log.read_text(errors="replace") if self.log.exists() else ""
        self.kill()
        self._cleanup()
        lines = [line.strip() for line in (err.decode("utf-8", "replace") + "\n" + log_text).splitlines()]
        lines = [line for line in lines if line] or ["no output"]
        why = next((line for line in lines if "Error" in line), lines[-1])  # its first error, not "found at"
        how = f"exited with code {code}" if code is not None else f"did not listen within {timeout_s:g} s"
        raise BrokerError(f"mosquitto on {self.host}:{self.port} {how}: {why}")

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM (mosquitto writes its persistence file), SIGKILL if it does not exit in ``timeout_s``."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reap()
        self._cleanup()

    def kill(self) -> None:
        """SIGKILL: a crash, with nothing written."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._reap()

    def restart(self) -> None:
        self.stop()
        self.start()

    def version(self) -> str:
        """The first line of ``mosquitto -h`` (e.g. ``mosquitto version 2.0.11``)."""
        if not self.exe:
            return "mosquitto not installed"
        out = subprocess.run([self.exe, "-h"], capture_output=True, text=True, timeout=10).stdout
        return (out.splitlines() or ["mosquitto (unknown version)"])[0]

    def _reap(self) -> None:
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None

    def _cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""An embedded MQTT broker (amqtt) for the demo: in-process, loopback, a free port.

The demo must run on a fresh machine with only the runtime install, so it cannot count
on a system mosquitto. amqtt is pure Python and runs in its own thread with its own
asyncio loop; :class:`EmbeddedBroker` starts it, waits until the port accepts
connections, and stops it. The plugins are cut to anonymous authentication only (no
``$SYS`` topics, no packet logging), which keeps it quiet and cheap.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from typing import Any

from sortcam.errors import BrokerError, DependencyError

log = logging.getLogger(__name__)

START_TIMEOUT_S = 15.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host`` (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_port(host: str, port: int, timeout_s: float) -> bool:
    """True once ``host:port`` accepts a TCP connection, False after ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class EmbeddedBroker:
    """amqtt 0.12 broker on ``127.0.0.1:<port>`` in a daemon thread.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. ``url`` is the
    ``mqtt://host:port`` the other parts connect to.
    """

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker: Any = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def _config(self) -> dict[str, Any]:
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }

    def start(self) -> EmbeddedBroker:
        """Start the broker and block until it accepts connections (raises :class:`BrokerError`)."""
        try:
            from amqtt.broker import Broker  # noqa: F401
        except ImportError as exc:
            raise DependencyError(f"the embedded broker needs amqtt (pip install amqtt==0.12.1): {exc}") from None
        # amqtt logs every connection, and warns about every client that drops without a
        # DISCONNECT (which is what a Last Will test does on purpose); the demo has its own view.
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.ERROR)
        self._thread = threading.Thread(target=self._run, name="sortcam-broker", daemon=True)
        self._thread.start()
        self._started.wait(START_TIMEOUT_S)
        if self._error is not None:
            raise BrokerError(f"embedded broker failed to start on {self.host}:{self.port}: {self._error}")
        if not self._started.is_set() or not wait_port(self.host, self.port, START_TIMEOUT_S):
            raise BrokerError(f"embedded broker did not open {self.host}:{self.port} within {START_TIMEOUT_S:.0f} s")
        log.debug("embedded broker on %s", self.url)
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to start(); a thread must not die silently
            self._error = exc
            self._started.set()
        finally:
            loop.close()

    async def _main(self) -> None:
        from amqtt.broker import Broker

        self._stop = asyncio.Event()
        self._broker = Broker(self._config())
        await self._broker.start()
        self._started.set()
        await self._stop.wait()
        try:
            await asyncio.wait_for(self._broker.shutdown(), timeout=5)
        except Exception as exc:  # shutting down: log, never raise
            log.debug("embedded broker shutdown: %s", exc)

    def stop(self) -> None:
        """Stop the broker and join its thread (idempotent)."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

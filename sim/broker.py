"""A broker started and stopped by the demo on a free loopback port.

:class:`EmbeddedBroker` is amqtt, pure Python, in-process in its own thread with its own
asyncio loop: it needs no system package. Its plugins are cut to
anonymous authentication (no ``$SYS`` topics, no packet logging); it comes with the ``demo``
extra (``pip install 'sortcam[demo]'``). amqtt 0.12 speaks MQTT
3.1.1 only; the device twin does too, but a client that insists on MQTT 5 (the host
controller's persistent session uses a v5 session expiry) gets no CONNACK from it.

:class:`sortcam.mosquitto.Mosquitto` runs the ``mosquitto`` binary (``scripts/setup.sh``
installs it) as a child process with a throw-away config on a free port: MQTT 3.1.1 and 5.
:func:`start_local_broker` picks one (``auto``: mosquitto when installed, else amqtt).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Protocol

from sortcam.errors import BrokerError
from sortcam.extras import require
from sortcam.mosquitto import START_TIMEOUT_S, Mosquitto, find_mosquitto
from sortcam.net import free_port

log = logging.getLogger(__name__)


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
        require("amqtt.broker", "demo", "the embedded broker", instead="use --broker-kind mosquitto")
        # amqtt logs every connection, and warns about every client that drops without a
        # DISCONNECT (which is what a Last Will test does on purpose); the demo has its own view.
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.ERROR)
        self._thread = threading.Thread(target=self._run, name="sortcam-broker", daemon=True)
        self._thread.start()
        self._started.wait(START_TIMEOUT_S)
        if self._error is not None:
            raise BrokerError(f"embedded broker failed to start on {self.host}:{self.port}: {self._error}")
        # No TCP probe here: Broker.start() returns once its servers listen, and amqtt logs
        # an error for every connection that closes without speaking MQTT.
        if not self._started.is_set():
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


BROKER_KINDS: tuple[str, ...] = ("auto", "amqtt", "mosquitto")


class LocalBroker(Protocol):
    host: str
    port: int

    @property
    def url(self) -> str: ...

    def stop(self) -> None: ...


def start_local_broker(kind: str = "auto") -> LocalBroker:
    """Start a broker of ``kind`` (``auto``, ``amqtt``, ``mosquitto``) on a free loopback port."""
    if kind not in BROKER_KINDS:
        raise BrokerError(f"unknown broker kind {kind!r}: expected one of {', '.join(BROKER_KINDS)}")
    if kind == "mosquitto" or (kind == "auto" and find_mosquitto()):
        return Mosquitto().start()
    return EmbeddedBroker().start()

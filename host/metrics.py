"""The controller's Prometheus metrics, with ``prometheus_client``.

:data:`METRICS` lists every metric once (name without the ``sortcam_host_`` prefix, type,
help, label names), as docs/host.md documents them. :class:`Metrics` holds them in its own
registry (one per controller, so in-process controllers in tests and the demo never share
counts) behind a small name-based interface the controller and the serial worker call.
:class:`MetricsServer` serves ``GET /metrics`` (prometheus_client's WSGI app: text format
0.0.4, or OpenMetrics when a scraper asks for it) and ``GET /healthz`` on a thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

PREFIX = "sortcam_host_"
LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

METRICS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("messages_total", "counter", "classification messages received", ()),
    ("invalid_messages_total", "counter", "messages that failed the contract, by kind", ("kind",)),
    ("duplicates_total", "counter", "items seen again (QoS 1 redelivery, resends)", ()),
    ("decisions_total", "counter", "items decided, by bin and reason", ("bin", "reason")),
    ("decisions_published_total", "counter", "decision messages published, by status", ("status",)),
    ("acked_total", "counter", "items acknowledged by the sorter", ()),
    ("missed_total", "counter", "items not sorted, by reason", ("reason",)),
    ("serial_writes_total", "counter", "SORT lines written (first attempts and retries)", ()),
    ("serial_retries_total", "counter", "SORT lines written again after an ACK timeout or NAK", ()),
    ("serial_naks_total", "counter", "NAKs from the sorter, by reason", ("reason",)),
    ("serial_rx_errors_total", "counter", "unreadable sorter lines, by kind", ("kind",)),
    ("serial_reconnects_total", "counter", "times the serial port was reopened", ()),
    ("serial_duplicate_acks_total", "counter", "ACKs for items already acknowledged", ()),
    ("serial_unexpected_acks_total", "counter", "ACKs for unknown or missed items", ()),
    ("sorter_events_total", "counter", "EVT lines from the sorter, by event", ("event",)),
    ("late_items_total", "counter", "items written after their belt delay had passed (sent with delay 0)", ()),
    ("recovered_items_total", "counter", "un-acknowledged items re-sent after a restart", ()),
    ("handler_errors_total", "counter", "internal errors while handling a message", ()),
    ("db_errors_total", "counter", "failed commits of the state db (retried; nothing acknowledged meanwhile)", ()),
    ("mqtt_connects_total", "counter", "successful MQTT connections", ()),
    ("mqtt_connect_failures_total", "counter", "refused MQTT connections", ()),
    ("mqtt_connected", "gauge", "1 while connected to the broker", ()),
    ("serial_up", "gauge", "1 while the serial port is open", ()),
    ("sorter_responding", "gauge", "1 while the sorter answers PING", ()),
    ("sorter_jammed", "gauge", "1 after EVT JAM until READY/CLEARED", ()),
    ("serial_backlog", "gauge", "items waiting for or awaiting an ACK", ()),
    ("receipt_to_write_seconds", "histogram", "MQTT receipt to first SORT write", ()),
    ("receipt_to_ack_seconds", "histogram", "MQTT receipt to the sorter's ACK", ()),
)
"""Every metric but ``devices`` (computed at scrape time from the controller's device table)."""
DEVICES_HELP = "known devices by state (online, offline, stale)"

DeviceStates = Callable[[], Iterable[tuple[str, str]]]
"""Returns ``(device, state)`` for every known device."""

# the *_created series (one per counter and histogram) would double the scrape for no use here
prometheus_client.disable_created_metrics()


class _Devices(Collector):
    def __init__(self, states: DeviceStates) -> None:
        self._states = states

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(PREFIX + "devices", DEVICES_HELP, labels=["device", "state"])
        try:
            for device, state in self._states():
                family.add_metric([device, state], 1.0)
        except Exception:  # a broken gauge must not break the scrape
            pass
        yield family


class Metrics:
    """The registry of one controller. Names are given without the ``sortcam_host_`` prefix;
    ``labels`` must name exactly the metric's label names."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._metrics: dict[str, Any] = {}
        for name, kind, text, labelnames in METRICS:
            if kind == "counter":
                metric: Any = Counter(PREFIX + name, text, labelnames, registry=self.registry)
            elif kind == "gauge":
                metric = Gauge(PREFIX + name, text, labelnames, registry=self.registry)
            else:
                metric = Histogram(PREFIX + name, text, labelnames, registry=self.registry, buckets=LATENCY_BUCKETS_S)
            self._metrics[name] = metric

    def _child(self, name: str, labels: dict[str, str] | None) -> Any:
        metric = self._metrics[name]
        return metric.labels(**labels) if labels else metric

    def inc(self, name: str, amount: float = 1.0, labels: dict[str, str] | None = None) -> None:
        self._child(name, labels).inc(amount)

    def set(self, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        self._child(name, labels).set(value)

    def observe(self, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        self._child(name, labels).observe(value)

    def devices(self, states: DeviceStates) -> None:
        """Serve the ``devices{device,state}`` gauge from ``states`` at scrape time."""
        self.registry.register(_Devices(states))

    def get(self, name: str, labels: dict[str, str] | None = None) -> float:
        """The current value of a counter or gauge series (0 if it has none yet)."""
        value = self.registry.get_sample_value(PREFIX + name, labels or {})
        return 0.0 if value is None else float(value)

    def total(self, name: str) -> float:
        """Sum of a counter over all its label sets."""
        full = PREFIX + name
        return sum(s.value for family in self._metrics[name].collect() for s in family.samples if s.name == full)

    def render(self) -> str:
        """The text format 0.0.4 a Prometheus server scrapes."""
        return generate_latest(self.registry).decode("utf-8")


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass


class MetricsServer:
    """``GET /metrics`` and ``GET /healthz`` (200 when ``health()`` says ok, else 503) on
    ``host:port`` (0 = any free port, then ``port`` says which)."""

    def __init__(self, metrics: Metrics, host: str, port: int, health: Callable[[], tuple[bool, str]]) -> None:
        scrape = make_wsgi_app(metrics.registry)

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path == "/metrics":
                result: Iterable[bytes] = scrape(environ, start_response)
                return result
            if path == "/healthz":
                ok, text = health()
                body = (text + "\n").encode("utf-8")
                start_response(
                    "200 OK" if ok else "503 Service Unavailable",
                    [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
                )
                return [body]
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]

        self._server = make_server(host, port, app, server_class=_Server, handler_class=_QuietHandler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

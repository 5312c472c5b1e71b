"""Prometheus text-format metrics (exposition format 0.0.4) with the standard library only.

Counters, gauges and histograms live in a :class:`Metrics` registry; ``render()`` writes
the text a Prometheus server scrapes from ``GET /metrics``. Every metric is prefixed
``sortcam_host_``. The HTTP server is :class:`http.server.ThreadingHTTPServer` on a thread.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "sortcam_host_"
LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)

Labels = tuple[tuple[str, str], ...]


def _labels(labels: dict[str, str] | None) -> Labels:
    return tuple(sorted((labels or {}).items()))


def _fmt_labels(labels: Labels, extra: tuple[str, str] | None = None) -> str:
    items = list(labels) + ([extra] if extra else [])
    if not items:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in items)
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    return repr(float(value)) if value != int(value) else str(int(value))


class _Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.n += 1


class Metrics:
    """A small thread-safe registry. Names are given without the ``sortcam_host_`` prefix."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._help: dict[str, tuple[str, str]] = {}
        self._values: dict[str, dict[Labels, float]] = {}
        self._hists: dict[str, dict[Labels, _Histogram]] = {}
        self._gauge_fns: dict[str, Callable[[], dict[Labels, float]]] = {}

    def describe(self, name: str, kind: str, text: str) -> None:
        self._help[name] = (kind, text)

    def inc(self, name: str, amount: float = 1.0, labels: dict[str, str] | None = None) -> None:
        key = _labels(labels)
        with self._lock:
            series = self._values.setdefault(name, {})
            series[key] = series.get(key, 0.0) + amount

    def set(self, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        with self._lock:
            self._values.setdefault(name, {})[_labels(labels)] = value

    def observe(self, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        key = _labels(labels)
        with self._lock:
            series = self._hists.setdefault(name, {})
            hist = series.get(key)
            if hist is None:
                hist = series[key] = _Histogram(LATENCY_BUCKETS_S)
            hist.observe(value)

    def gauge_fn(self, name: str, fn: Callable[[], dict[Labels, float]]) -> None:
        """A gauge computed at scrape time (``fn`` returns label tuples to values)."""
        self._gauge_fns[name] = fn

    def get(self, name: str, labels: dict[str, str] | None = None) -> float:
        with self._lock:
            return self._values.get(name, {}).get(_labels(labels), 0.0)

    def total(self, name: str) -> float:
        """Sum of a counter over all its label sets."""
        with self._lock:
            return sum(self._values.get(name, {}).values())

    def render(self) -> str:
        out: list[str] = []
        computed = {}
        for name, fn in list(self._gauge_fns.items()):
            try:
                computed[name] = fn()
            except Exception:  # a broken gauge must not break the scrape
                computed[name] = {}
        with self._lock:
            names = sorted(set(self._values) | set(self._hists) | set(computed) | set(self._help))
            for name in names:
                kind, text = self._help.get(name, ("untyped", ""))
                full = PREFIX + name
                if text:
                    out.append(f"# HELP {full} {text}")
                out.append(f"# TYPE {full} {kind}")
                for labels, value in sorted({**self._values.get(name, {}), **computed.get(name, {})}.items()):
                    out.append(f"{full}{_fmt_labels(labels)} {_num(value)}")
                for labels, hist in sorted(self._hists.get(name, {}).items()):
                    cumulative = 0
                    for bound, count in zip(hist.buckets, hist.counts, strict=False):
                        cumulative += count
                        out.append(f"{full}_bucket{_fmt_labels(labels, ('le', _num(bound)))} {cumulative}")
                    out.append(f"{full}_bucket{_fmt_labels(labels, ('le', '+Inf'))} {hist.n}")
                    out.append(f"{full}_sum{_fmt_labels(labels)} {_num(hist.total)}")
                    out.append(f"{full}_count{_fmt_labels(labels)} {hist.n}")
        return "\n".join(out) + "\n"


class MetricsServer:
    """``GET /metrics`` (Prometheus text) and ``GET /healthz`` on ``host:port`` (0 = any free port)."""

    def __init__(self, metrics: Metrics, host: str, port: int, health: Callable[[], tuple[bool, str]]) -> None:
        registry = metrics

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path.split("?")[0] == "/metrics":
                    body = registry.render().encode("utf-8")
                    self._reply(200, body, "text/plain; version=0.0.4; charset=utf-8")
                elif self.path.split("?")[0] == "/healthz":
                    ok, text = health()
                    self._reply(200 if ok else 503, (text + "\n").encode("utf-8"), "text/plain")
                else:
                    self._reply(404, b"not found\n", "text/plain")

            def _reply(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

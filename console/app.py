"""The console's Flask app, and :func:`start_console` to run it in a thread (``sortcam demo --console``).

Pages are rendered on the server; a few lines of JavaScript poll small HTML fragments
(the line every second, a running retrain) and swap them in. State-changing actions
(labels, flags, retrain, promote) need the console token: from the sign-in form (a
session cookie), an ``Authorization: Bearer <token>`` header, or a ``token`` form field.
Read-only pages are open to loopback clients only; from any other address every page
needs the token.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Flask,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from sortcam import mqtt_contract as mc
from sortcam import strict_json
from sortcam.card import MODEL_DIR, load_card
from sortcam.checkout import repo_root
from sortcam.console import modelops
from sortcam.console.classify import ClassifierService
from sortcam.console.labels import LabelStore
from sortcam.console.retrain import MODES, JobManager, RetrainSettings, plan_dataset, promote, recover
from sortcam.console.store import Store
from sortcam.errors import BusyError, ConfigError, DataError, ModelError, SortcamError, UsageError
from sortcam.state import console_data

log = logging.getLogger(__name__)

SEQ_RE = re.compile(r"[0-9]{1,10}")
"""A ``seq`` in a form or URL: ASCII digits only (``str.isdigit`` also takes "٣" and "²")."""
MAX_FILES = 16


@dataclass
class ConsoleConfig:
    """Everything ``sortcam console`` is told; see ``sortcam console --help``."""

    broker_url: str | None = "mqtt://127.0.0.1:1883"
    """``None`` runs without MQTT (classify, label and retrain only)."""
    root: str = mc.DEFAULT_ROOT
    line: str = "line1"
    data_dir: Path = field(default_factory=console_data)
    """Samples, labels, retrain jobs; default: ``console`` in the state folder (:mod:`sortcam.state`)."""
    token: str | None = None
    """``None``: a random token is generated and logged at start."""
    card: Path | None = None
    """The line's model card; ``None`` is the shipped one (``model/sortcam_trashnet.json``)."""
    firmware_dir: Path | None = None
    """Where promotion writes the C sources; ``None``: ``firmware/src`` when the card is the shipped one, else none."""
    no_firmware: bool = False
    """Promote without firmware sources (a line of device twins only)."""
    bins: dict[str, str] | None = None
    """The line's label-to-bin map; ``None`` takes the card's."""
    threshold: float = 0.6
    max_upload_mb: float = 16.0
    host: str = "127.0.0.1"
    port: int = 8080
    retrain: RetrainSettings = field(default_factory=RetrainSettings)


def load_bins(path: Path) -> dict[str, str]:
    """A JSON bin map: ``{"label": "bin", ...}`` or a host config with a ``bins`` object."""
    try:
        data = strict_json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read bin map {path}: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("bins"), dict):
        data = data["bins"]
    if (
        not isinstance(data, dict)
        or not data
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items())
    ):
        raise ConfigError(f"bin map {path}: expected a JSON object of label -> bin name")
    return dict(data)


class Console:
    """The console's state: store, MQTT feed, classifier, labels, jobs."""

    def __init__(self, config: ConsoleConfig) -> None:
        self.config = config
        self.data_dir = Path(config.data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.token = config.token or secrets.token_urlsafe(12)
        self.generated_token = config.token is None
        self.card_path = (Path(config.card) if config.card else MODEL_DIR / "sortcam_trashnet.json").resolve()
        if self.card_path.suffix == ".tflite":
            self.card_path = self.card_path.with_suffix(".json")
        if recover(self.card_path.parent):
            log.warning("finished an interrupted promotion in %s", self.card_path.parent)
        self.firmware_dir = config.firmware_dir
        shipped = (MODEL_DIR / "sortcam_trashnet.json").resolve()
        repo = repo_root()
        if self.firmware_dir is None and self.card_path == shipped and not config.no_firmware and repo is not None:
            self.firmware_dir = repo / "firmware" / "src"
        self.store = Store(self.data_dir / "console.db", config.threshold)
        self.classifier = ClassifierService(self.card_path, config.threshold)
        self.labels = LabelStore(self.data_dir / "labelled")
        self.jobs = JobManager(self.data_dir / "jobs")
        self.feed = None
        if config.broker_url:
            from sortcam.console.feed import MqttFeed

            self.feed = MqttFeed(self.store, config.broker_url, config.root, config.line, self.data_dir)
        self.last_promotion: dict[str, Any] | None = None

    @property
    def bins(self) -> dict[str, str]:
        if self.config.bins is not None:
            return dict(self.config.bins)
        card = self.classifier.card
        return dict(card.bins) if card is not None else {}

    def classes(self) -> list[str]:
        card, _ = self.classifier.require()
        return list(card.classes)

    def start(self) -> None:
        if self.feed is not None:
            self.feed.start()

    def stop(self) -> None:
        if self.feed is not None:
            self.feed.stop()
        self.jobs.stop_all()
        self.store.close()

    # --- actions (raise SortcamError on bad input) -----------------------------------------

    def label_item(self, device: str, boot: str, seq: int, label: str) -> Path:
        item = self.store.get(device, boot, seq)
        if item is None:
            raise DataError(f"no item {device}/{boot}/{seq}")
        if not item.get("sample"):
            raise DataError(f"item {device}/{boot}/{seq} has no image to label")
        dest = self.labels.save(self.data_dir / item["sample"], label, self.classes(), f"{device}_{boot}_{seq}")
        self.store.set_labelled(device, boot, seq, label)
        return dest

    def start_retrain(self, mode: str) -> Any:
        reason = modelops.training_available()
        if reason is not None:
            raise ModelError(reason)
        if mode not in MODES:
            raise UsageError(f"unknown retrain mode {mode!r}: expected one of {', '.join(MODES)}")
        busy = self.jobs.running()
        if busy is not None:
            st = busy.state()
            raise BusyError(
                f"a retrain is already running (job {busy.id}, {st['stage']}, {st['percent']}%); wait for it to finish"
            )
        classes = self.classes()
        plan_dataset(mode, classes, self.labels.root, self.config.retrain)  # fail fast, with the counts
        settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self.config.retrain).items()}
        spec = {"card": str(self.card_path), "labelled": str(self.labels.root), "settings": settings}
        return self.jobs.start(mode, spec)

    def promote_job(self, job_id: str) -> dict[str, Any]:
        job = self.jobs.get(job_id)
        st = job.state()
        if st["status"] != "done":
            raise UsageError(f"job {job_id} is {st['status']}: only a finished retrain can be promoted")
        result = st["result"]
        promo = promote(Path(result["candidate_card"]), self.card_path, self.firmware_dir, self.bins)
        self.classifier.reload()
        told = None
        if self.feed is not None:
            card = load_card(self.card_path)
            payload = mc.encode_model_announcement(
                sha256=promo.sha256, classes=card.classes, card=str(self.card_path), ts=time.time()
            )
            told = self.feed.publish_model(payload)
        out = {**promo.to_json(), "job": job_id, "model": promo.sha256[:12], "announced": told}
        self.last_promotion = out
        return out


# --- Flask --------------------------------------------------------------------------------


def _is_loopback(addr: str | None) -> bool:
    try:
        return addr is not None and ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


def create_app(config: ConsoleConfig, console: Console | None = None) -> Flask:
    """Build the Flask app (the console is created here unless given; its MQTT feed is not started).

    Actions have an HTML route (form post, redirect) and an ``/api/`` twin (JSON); the
    HTML route is registered first so that ``url_for`` in the templates builds it.
    """
    con = console or Console(config)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = int(config.max_upload_mb * 1024 * 1024)
    app.config["SECRET_KEY"] = secrets.token_bytes(32)
    app.config["SESSION_COOKIE_SAMESITE"] = "Strict"
    app.extensions["sortcam_console"] = con
    token_digest = hmac.new(app.config["SECRET_KEY"], con.token.encode(), "sha256").hexdigest()

    def authorized() -> bool:
        if session.get("auth") == token_digest:
            return True
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            given = header[7:]
        else:
            try:
                given = request.form.get("token") or ""
            except HTTPException:  # an oversized body: no token from it
                given = ""
        return bool(given) and hmac.compare_digest(given.encode(), con.token.encode())

    def wants_json() -> bool:
        return request.path.startswith("/api/")

    def fail(message: str, status: int = 400) -> Response:
        if wants_json():
            return Response(json.dumps({"error": message}), status=status, mimetype="application/json")
        return Response(render_template("error.html", message=message, status=status, con=con), status=status)

    @app.before_request
    def guard() -> Any:
        if request.endpoint in ("static", "login"):
            return None
        if not _is_loopback(request.remote_addr) and not authorized():
            return fail("sign in with the console token (read-only pages are open on localhost only)", 401)
        return None

    def require_auth() -> None:
        if not authorized():
            raise _AuthError()

    class _AuthError(Exception):
        pass

    @app.errorhandler(_AuthError)
    def on_auth(_: Exception) -> Response:
        return fail("this action needs the console token: sign in, or send 'Authorization: Bearer <token>'", 401)

    @app.errorhandler(RequestEntityTooLarge)
    def on_too_large(_: Exception) -> Response:
        return fail(f"upload too large: the limit is {config.max_upload_mb:g} MB per request", 413)

    @app.errorhandler(SortcamError)
    def on_sortcam(exc: SortcamError) -> Response:
        log.info("refused %s %s: %s", request.method, request.path, exc)
        return fail(str(exc), exc.http_status)

    @app.errorhandler(HTTPException)
    def on_http(exc: HTTPException) -> Response:
        return fail(f"{exc.code} {exc.name}: {exc.description}", exc.code or 500)

    @app.context_processor
    def inject() -> dict[str, Any]:
        return {"con": con, "signed_in": authorized()}

    # --- line --------------------------------------------------------------------------

    def line_state() -> dict[str, Any]:
        feed = con.feed
        return {
            "summary": con.store.summary(),
            "devices": con.store.device_list(),
            "items": con.store.recent(50),
            "broker": {
                "url": feed.url if feed else None,
                "connected": bool(feed and feed.connected.is_set()),
                "error": feed.last_error if feed else "no broker configured",
                "model": feed.model_announcement if feed else None,
            },
            "now": time.time(),
        }

    @app.get("/")
    def line() -> str:
        return render_template("line.html", **line_state())

    @app.get("/line/partial")
    def line_partial() -> str:
        return render_template("_line.html", **line_state())

    @app.get("/api/line")
    def api_line() -> Response:
        return jsonify(line_state())

    @app.get("/samples/<device>/<boot>/<int:seq>.jpg")
    def sample(device: str, boot: str, seq: int) -> Response:
        if not _is_id(device) or not _is_id(boot):
            abort(404)
        path = con.data_dir / "samples" / device / boot / f"{seq}.jpg"
        if not path.is_file():
            abort(404)
        return send_file(path, mimetype="image/jpeg")

    @app.get("/labelled/<label>/<name>")
    def labelled_image(label: str, name: str) -> Response:
        path = con.labels.root / label / name
        if not _is_id(label) or "/" in name or name.startswith(".") or not path.is_file():
            abort(404)
        return send_file(path)

    @app.post("/api/items/flag")
    @app.post("/items/flag")
    def flag() -> Any:
        require_auth()
        device, boot, seq = _item_key(_fields())
        if not con.store.flag(device, boot, seq):
            raise DataError(f"no item {device}/{boot}/{seq}")
        if wants_json():
            return jsonify({"flagged": f"{device}/{boot}/{seq}"})
        flash(f"flagged {device}/{boot}/{seq} for labelling")
        return redirect(url_for("line"))

    # --- classify ------------------------------------------------------------------------

    def classify_uploads() -> list[dict[str, Any]]:
        files = [f for f in request.files.getlist("photos") + request.files.getlist("photo") if f and f.filename]
        if not files:
            raise DataError("no photo uploaded: choose one or more image files")
        if len(files) > MAX_FILES:
            raise DataError(f"{len(files)} files: at most {MAX_FILES} per upload")
        out = []
        for f in files:
            name = Path(f.filename or "upload").name[:80]
            out.append(con.classifier.classify_bytes(f.read(), name).to_json())
        return out

    @app.get("/classify")
    def classify_page() -> str:
        return render_template("classify.html", results=None)

    @app.post("/classify")
    def classify_post() -> str:
        return render_template("classify.html", results=classify_uploads())

    @app.post("/api/classify")
    def api_classify() -> Response:
        return jsonify({"results": classify_uploads()})

    # --- labelling -------------------------------------------------------------------------

    @app.get("/queue")
    def queue() -> str:
        classes = con.classifier.card.classes if con.classifier.card else []
        return render_template(
            "queue.html",
            items=con.store.queue(),
            classes=classes,
            missing=con.store.queue_without_sample(),
            counts=con.labels.counts(),
        )

    @app.get("/api/queue")
    def api_queue() -> Response:
        return jsonify(
            {
                "items": con.store.queue(),
                "without_sample": con.store.queue_without_sample(),
                "labelled": con.labels.counts(),
            }
        )

    @app.post("/api/label")
    @app.post("/queue/label")
    def label() -> Any:
        require_auth()
        form = _fields()
        device, boot, seq = _item_key(form)
        lab = str(form.get("label", ""))
        dest = con.label_item(device, boot, seq, lab)
        if wants_json():
            return jsonify({"labelled": f"{device}/{boot}/{seq}", "label": lab, "path": str(dest)})
        flash(f"labelled {device}/{boot}/{seq} as {lab}")
        return redirect(url_for("queue"))

    # --- retrain -----------------------------------------------------------------------------

    def retrain_state() -> dict[str, Any]:
        job = con.jobs.current
        return {
            "job": job.state() if job else None,
            "available": modelops.training_available(),
            "modes": MODES,
            "counts": con.labels.counts(),
            "min_per_class": con.config.retrain.min_per_class,
            "promotion": con.last_promotion,
            "card": con.classifier.card,
            "bins": con.bins,
        }

    @app.get("/retrain")
    def retrain_page() -> str:
        return render_template("retrain.html", **retrain_state())

    @app.get("/retrain/partial")
    def retrain_partial() -> str:
        return render_template("_job.html", **retrain_state())

    @app.post("/api/retrain")
    @app.post("/retrain")
    def retrain_start() -> Any:
        require_auth()
        form = _fields()
        job = con.start_retrain(str(form.get("mode", "")))
        if wants_json():
            return jsonify(job.state()), 202
        flash(f"retrain {job.id} started ({MODES[job.mode]})")
        return redirect(url_for("retrain_page"))

    @app.get("/api/retrain/<job_id>")
    def retrain_status(job_id: str) -> Response:
        return jsonify(con.jobs.get(job_id).state())

    @app.post("/api/retrain/<job_id>/promote")
    @app.post("/retrain/<job_id>/promote")
    def retrain_promote(job_id: str) -> Any:
        require_auth()
        out = con.promote_job(job_id)
        if wants_json():
            return jsonify(out)
        told = "; twins told on the retained model topic" if out["announced"] else ""
        flash(f"promoted model {out['model']}{told}")
        return redirect(url_for("retrain_page"))

    # --- sign in -----------------------------------------------------------------------------

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        if request.method == "POST":
            given = request.form.get("token", "")
            if given and hmac.compare_digest(given.encode(), con.token.encode()):
                session["auth"] = token_digest
                flash("signed in")
                return redirect(local_path(request.args.get("next")) or url_for("line"))
            return fail("wrong token", 401)
        return render_template("login.html")

    @app.post("/logout")
    def logout() -> Any:
        session.pop("auth", None)
        return redirect(url_for("line"))

    return app


def _is_id(text: str) -> bool:
    return mc.DEVICE_ID_RE.fullmatch(text) is not None


def _fields() -> Mapping[str, Any]:
    """An action's fields: the form, or a JSON object body; a field given twice is refused.

    A repeated key (``{"label":"paper","label":"glass"}``, ``label=a&label=b``) would
    let the first copy be checked and another one be used, so neither is read at all.
    """
    if request.form:
        twice = sorted(k for k in request.form if len(request.form.getlist(k)) > 1)
        if twice:
            raise DataError(f"field {twice[0]!r} given twice")
        return request.form
    body = request.get_data(cache=True)
    if not body.strip():
        return {}
    try:
        data = strict_json.loads(body)
    except strict_json.DuplicateKeyError as exc:
        raise DataError(f"request body holds {exc.key!r} twice") from None
    except ValueError:
        raise DataError("request body is neither a form nor JSON") from None
    if not isinstance(data, dict):
        raise DataError("request body is not a JSON object")
    return data


def local_path(target: str | None) -> str | None:
    """``target`` when it is a path on this site (``/queue?x=1``), else ``None``.

    Sign-in's ``?next=`` must not send the browser elsewhere: a scheme or host
    (``https://evil.example/``), a protocol-relative ``//evil.example``, a backslash
    (browsers read ``/\\evil.example`` as ``//evil.example``) and control characters
    (browsers drop tabs and newlines, so ``/\\t/evil.example`` becomes ``//``) are refused.
    """
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def _item_key(form: Mapping[str, Any]) -> tuple[str, str, int]:
    device, boot, seq = str(form.get("device", "")), str(form.get("boot", "")), str(form.get("seq", ""))
    if not _is_id(device) or not _is_id(boot) or not SEQ_RE.fullmatch(seq) or int(seq) > mc.SEQ_MAX:
        raise DataError("an item is named by device, boot and seq")
    return device, boot, int(seq)


@dataclass
class ConsoleHandle:
    """A console serving in a background thread; :meth:`stop` ends it."""

    url: str
    console: Console
    _server: Any
    _thread: threading.Thread

    @property
    def token(self) -> str:
        return self.console.token

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        self.console.stop()


def start_console(
    broker_url: str | None,
    port: int = 8080,
    *,
    root: str = mc.DEFAULT_ROOT,
    line: str = "line1",
    data_dir: str | Path | None = None,
    token: str | None = None,
    card: str | Path | None = None,
    host: str = "127.0.0.1",
    **options: Any,
) -> ConsoleHandle:
    """Serve the console in a daemon thread (for ``sortcam demo --console``); ``port=0`` picks a free port.

    ``options`` are further :class:`ConsoleConfig` fields (``firmware_dir``, ``threshold``,
    ``bins``, ``retrain``...). Returns once the server is listening.
    """
    from werkzeug.serving import make_server

    data = Path(data_dir) if data_dir is not None else console_data()
    config = ConsoleConfig(
        broker_url=broker_url,
        root=root,
        line=line,
        data_dir=data,
        token=token,
        card=Path(card) if card else None,
        host=host,
        port=port,
        **options,
    )
    con = Console(config)
    app = create_app(config, con)
    try:
        server = make_server(host, port, app, threaded=True)
    except OSError as exc:
        con.stop()
        raise UsageError(f"cannot serve the console on {host}:{port}: {exc.strerror or exc}") from None
    con.start()
    thread = threading.Thread(target=server.serve_forever, name="sortcam-console", daemon=True)
    thread.start()
    url = f"http://{host}:{server.server_port}"
    if con.generated_token:
        log.info("console token (for labels, retrain, promote): %s", con.token)
    log.info("console on %s", url)
    return ConsoleHandle(url, con, server, thread)

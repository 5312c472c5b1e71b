"""Controller configuration: command-line options merged with an optional JSON or TOML file.

The file (``--config FILE``, ``.toml`` read with :mod:`tomllib`, or its backport ``tomli`` on
Python 3.10, anything else as JSON) may
hold these keys, all optional (docs/host.md has the full table)::

    threshold = 0.6                 # confidence below this goes to the reject bin
    reject_bin = "reject"           # bin for low confidence / unknown labels
    classes = ["cardboard", ...]    # only needed when there is no model card
    [gates]        # bin name -> sorter gate number 0..15 (null = no gate: status "rejected")
    paper = 1
    [labels]       # label -> bin name, merged over the model card's bins
    trash = "landfill"
    [biodegradable]  # label -> bool, merged over the model card's flags
    [belt_delay_ms]  # camera-to-gate travel time per device; "default" for the rest
    default = 1500
    [serial]       # ack_timeout_ms, retries, window, ping_interval_s, baud, reconnect_s
    [items]        # deadline_ms, compensate_latency
    [mqtt]         # client_id, shared_group, session_expiry_s, keepalive_s, stale_after_s, mqtt_version

Command-line options win over the file; the file wins over the model card.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser as its backport (a dependency only there, see pyproject.toml)
    import tomli as tomllib

from sortcam import mqtt_contract, strict_json
from sortcam.card import REJECT_BIN, load_card
from sortcam.errors import ConfigError, ModelError
from sortcam.mqtt_link import BrokerURL, parse_broker_url, resolve_credentials
from sortcam.serial_contract import DELAY_MAX_MS, GATE_MAX
from sortcam.state import host_db

DEFAULT_GATES: dict[str, int | None] = {
    "reject": 0,
    "paper": 1,
    "plastic": 2,
    "metal": 3,
    "glass": 4,
    "landfill": 5,
}
"""Default bin name -> gate number, matching the default TrashNet bin map of the model card."""

SECTIONS = {
    "threshold",
    "reject_bin",
    "classes",
    "gates",
    "labels",
    "biodegradable",
    "belt_delay_ms",
    "serial",
    "items",
    "mqtt",
    "state_db",
    "metrics_port",
}
SERIAL_KEYS = {"ack_timeout_ms", "retries", "window", "ping_interval_s", "baud", "reconnect_s"}
ITEM_KEYS = {"deadline_ms", "compensate_latency"}
MQTT_KEYS = {"client_id", "shared_group", "session_expiry_s", "keepalive_s", "stale_after_s", "root", "mqtt_version"}


@dataclass
class HostConfig:
    """Everything the controller needs. Times in the unit their name says (ms or s)."""

    broker: BrokerURL
    serial_url: str
    line: str
    root: str = mqtt_contract.DEFAULT_ROOT
    state_db: Path | None = None
    """SQLite state and event log; None: ``host-<line>.db`` in the state folder (:mod:`sortcam.state`)."""
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    client_id: str = ""
    shared_group: str | None = None
    username: str | None = None
    password: str | None = None
    password_file: str | None = None
    """A file whose first line is the MQTT password (or ``$SORTCAM_MQTT_PASSWORD_FILE``)."""
    ca_file: str | None = None
    session_expiry_s: int = 7 * 24 * 3600
    mqtt_version: str = "auto"
    keepalive_s: int = 15
    stale_after_s: float = 60.0
    threshold: float = 0.6
    reject_bin: str = REJECT_BIN
    gates: dict[str, int | None] = field(default_factory=lambda: dict(DEFAULT_GATES))
    label_bins: dict[str, str] = field(default_factory=dict)
    biodegradable: dict[str, bool] = field(default_factory=dict)
    belt_delay_ms: dict[str, int] = field(default_factory=dict)
    default_belt_delay_ms: int = 1500
    ack_timeout_ms: int = 250
    retries: int = 5
    window: int = 4
    ping_interval_s: float = 2.0
    baud: int = 115200
    reconnect_s: float = 0.5
    deadline_ms: int = 10000
    compensate_latency: bool = True
    db_sync: str = "normal"

    def __post_init__(self) -> None:
        if not self.client_id:
            self.client_id = f"sortcam-host-{self.line}"
        if self.state_db is None:
            self.state_db = host_db(self.line)

    def gate_for(self, bin_name: str) -> int | None:
        return self.gates.get(bin_name)

    def belt_delay_for(self, device: str) -> int:
        """Camera-to-gate travel time of ``device`` in ms."""
        return self.belt_delay_ms.get(device, self.default_belt_delay_ms)

    def validate(self) -> HostConfig:
        """Check ranges and that every bin a label can go to has a gate; raises :class:`ConfigError`."""
        try:
            mqtt_contract.check_root(self.root)
            mqtt_contract.decision_topic(self.root, self.line)
        except Exception as exc:
            raise ConfigError(str(exc)) from None
        if not isinstance(self.client_id, str) or not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", self.client_id):
            raise ConfigError(f"bad MQTT client id {self.client_id!r}")
        if self.shared_group is not None and (
            not isinstance(self.shared_group, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", self.shared_group)
        ):
            raise ConfigError(f"bad shared subscription group {self.shared_group!r}")
        if type(self.threshold) not in (int, float) or not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold {self.threshold} outside 0..1")
        for name, gate in self.gates.items():
            if gate is not None and (type(gate) is not int or not 0 <= gate <= GATE_MAX):
                raise ConfigError(f"gate of bin {name!r} must be an integer 0..{GATE_MAX} or null, got {gate!r}")
        if self.reject_bin not in self.gates:
            raise ConfigError(f"reject bin {self.reject_bin!r} has no entry in gates (use null for no gate)")
        if not self.label_bins:
            raise ConfigError("no label-to-bin map: give a model card or a [labels] table in --config")
        for label, bin_name in self.label_bins.items():
            if bin_name not in self.gates:
                raise ConfigError(f"label {label!r} goes to bin {bin_name!r}, which has no entry in gates")
        for device, delay in {"default": self.default_belt_delay_ms, **self.belt_delay_ms}.items():
            if not isinstance(device, str) or not mqtt_contract.DEVICE_ID_RE.fullmatch(device):
                raise ConfigError(f"belt_delay_ms: bad device id {device!r}: must match {mqtt_contract.ID_PATTERN}")
            if type(delay) is not int or not 0 <= delay <= DELAY_MAX_MS:
                raise ConfigError(f"belt_delay_ms for {device!r} must be an integer 0..{DELAY_MAX_MS}")
        _positive("ack_timeout_ms", self.ack_timeout_ms)
        _positive("deadline_ms", self.deadline_ms)
        _positive("window", self.window)
        _positive("ping_interval_s", self.ping_interval_s)
        _positive("reconnect_s", self.reconnect_s)
        _positive("baud", self.baud)
        _positive("keepalive_s", self.keepalive_s)
        if type(self.retries) is not int or self.retries < 0:
            raise ConfigError("retries must be an integer >= 0")
        if self.mqtt_version not in ("auto", "5", "3.1.1"):
            raise ConfigError(f"mqtt_version must be auto, 5 or 3.1.1, got {self.mqtt_version!r}")
        if self.db_sync not in ("normal", "full"):
            raise ConfigError("db_sync must be 'normal' or 'full'")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"metrics port {self.metrics_port} outside 0..65535")
        return self


def _positive(name: str, value: Any) -> None:
    if type(value) not in (int, float) or value <= 0:
        raise ConfigError(f"{name} must be a positive number, got {value!r}")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Parse a ``.toml`` or JSON config file into a dict; raises :class:`ConfigError`."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config {p}: {exc.strerror or exc}") from None
    try:
        if p.suffix.lower() == ".toml":
            data: Any = tomllib.loads(raw.decode("utf-8"))
        else:
            data = strict_json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError) as exc:
        raise ConfigError(f"config {p}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {p} is not a table/object")
    unknown = set(data) - SECTIONS
    if unknown:
        raise ConfigError(f"config {p}: unknown keys {', '.join(sorted(unknown))}")
    for section, keys in (("serial", SERIAL_KEYS), ("items", ITEM_KEYS), ("mqtt", MQTT_KEYS)):
        sub = data.get(section, {})
        if not isinstance(sub, dict):
            raise ConfigError(f"config {p}: [{section}] must be a table")
        bad = set(sub) - keys
        if bad:
            raise ConfigError(f"config {p}: unknown keys in [{section}]: {', '.join(sorted(bad))}")
    for section in ("gates", "labels", "biodegradable", "belt_delay_ms"):
        if not isinstance(data.get(section, {}), dict):
            raise ConfigError(f"config {p}: [{section}] must be a table")
    return data


def build_config(
    *,
    broker: str,
    serial_url: str,
    line: str,
    config_file: str | Path | None = None,
    card_path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> HostConfig:
    """Merge model card < config file < ``overrides`` (non-None CLI values) into a checked config."""
    file_data = read_config_file(config_file) if config_file else {}
    where = f"config {config_file}" if config_file else "defaults"
    cfg = HostConfig(broker=parse_broker_url(broker), serial_url=serial_url, line=line)

    card_bins: dict[str, str] = {}
    card_bio: dict[str, bool] = {}
    try:
        card = load_card(card_path)
        card_bins = {c: card.bin_for(c) for c in card.classes}
        card_bins.update(card.bins)
        card_bio = dict(card.biodegradable)
    except ModelError as exc:
        if not file_data.get("labels") and not file_data.get("classes"):
            raise ConfigError(f"{exc}; without a model card, --config must give [labels] (label -> bin)") from None
    classes = file_data.get("classes")
    if classes is not None:
        if not isinstance(classes, list) or not all(isinstance(c, str) and c for c in classes):
            raise ConfigError(f"{where}: classes must be a list of names")
        card_bins = {c: card_bins.get(c, cfg.reject_bin) for c in classes}
    try:
        labels = {str(k): str(v) for k, v in file_data.get("labels", {}).items()}
        cfg.label_bins = {**card_bins, **labels}
        cfg.biodegradable = {**card_bio, **{str(k): bool(v) for k, v in file_data.get("biodegradable", {}).items()}}
        if "gates" in file_data:
            cfg.gates = {str(k): (None if v is None else v) for k, v in file_data["gates"].items()}
        delays = dict(file_data.get("belt_delay_ms", {}))
        if "default" in delays:
            cfg.default_belt_delay_ms = delays.pop("default")
        cfg.belt_delay_ms = {str(k): v for k, v in delays.items()}
        for key in ("threshold", "reject_bin", "state_db", "metrics_port"):
            if key in file_data:
                setattr(cfg, key, file_data[key])
        for section in ("serial", "items", "mqtt"):
            for key, value in file_data.get(section, {}).items():
                setattr(cfg, key, value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    for key, value in (overrides or {}).items():
        if value is not None:
            setattr(cfg, key, value)
    if cfg.state_db is None:
        cfg.state_db = host_db(cfg.line)
    elif not isinstance(cfg.state_db, Path):
        cfg.state_db = Path(str(cfg.state_db))
    cfg.username, cfg.password = resolve_credentials(cfg.broker, cfg.username, cfg.password, cfg.password_file)
    if type(cfg.threshold) is int:
        cfg.threshold = float(cfg.threshold)
    return cfg.validate()

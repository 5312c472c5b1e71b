"""docs/DESIGN.md says what the code does: its layout, the status fields devices add, its topics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import tomllib

from sortcam import device_core, mqtt_contract

REPO = Path(__file__).resolve().parents[2]
DESIGN = (REPO / "docs" / "DESIGN.md").read_text()


def _layout() -> str:
    start = DESIGN.index("## Layout")
    return DESIGN[start : DESIGN.index("\n## ", start + 1)]


def test_the_layout_and_the_diagram_name_every_package_folder() -> None:
    package_dir = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    diagram = DESIGN[DESIGN.index("```") : DESIGN.index("```", DESIGN.index("```") + 3)]
    for folder in sorted(set(package_dir.values())):
        assert f"- `{folder}/`" in _layout(), f"the layout in DESIGN.md does not describe {folder}/"
        assert f"{folder}/" in diagram, f"the diagram in DESIGN.md does not show {folder}/"


def test_the_status_fields_devices_add_are_the_ones_they_send() -> None:
    sent = json.loads(device_core.encode_status(device_core.DeviceStatus(device="cam1", model="0123456789ab")))
    extra = [k for k in sent if k not in mqtt_contract.STATUS_FIELDS]
    status_text = DESIGN[DESIGN.index("- **`status`**") : DESIGN.index("- **`decision`**")]
    named = set(re.findall(r"`(\w+)`", status_text))
    assert "arena_used" in extra and "arena_bytes" not in extra
    assert set(extra) <= named, f"DESIGN.md's status paragraph lacks {sorted(set(extra) - named)}"
    assert "arena_bytes" not in named, "devices send arena_used; arena_bytes is the model card's figure"


def test_the_host_status_topic_is_documented_as_the_contract_builds_it() -> None:
    assert mqtt_contract.host_status_topic("sortcam", "L1") == "sortcam/line/L1/host"
    assert "`sortcam/line/<line>/host`" in DESIGN
    for field in mqtt_contract.HOST_STATUS_FIELDS[1:]:
        assert f"`{field}`" in DESIGN[DESIGN.index("**Host status**") :]


def test_no_process_words() -> None:
    """The design says what and why, not who asked for it."""
    for words in ("as the user asked", "the issue asks", "the user asked"):
        assert words not in DESIGN.lower(), words

"""The ``model`` a twin publishes is the hash of the .tflite it runs, never the card's claim.

Issue 16: the twin published ``model`` from the card's ``sha256``; a card with a wrong
claim made it publish ``000000000000``. These use the console tests' tiny model (no
TensorFlow needed) copied with an edited card.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cli_errors import one_line_error

from sortcam import mqtt_contract as mc
from sortcam.card import load_card
from sortcam.cli import main
from sortcam.errors import ModelError
from sortcam.sim.sources import SAMPLES_DIR
from sortcam.sim.twin import DeviceTwin

TINY = Path(__file__).resolve().parents[1] / "data" / "console"


def tiny_copy(folder: Path, name: str = "tiny", **card_over: Any) -> Path:
    """``tiny.tflite`` as ``<name>.tflite`` in ``folder`` with its card edited by ``card_over`` (None deletes)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(TINY / "tiny.tflite", folder / f"{name}.tflite")
    card = json.loads((TINY / "tiny.json").read_text())
    card["tflite"] = f"{name}.tflite"
    for key, value in card_over.items():
        if value is None:
            card.pop(key, None)
        else:
            card[key] = value
    (folder / f"{name}.json").write_text(json.dumps(card))
    return folder / f"{name}.json"


def file_hash(card_path: Path) -> str:
    return hashlib.sha256(card_path.with_suffix(".tflite").read_bytes()).hexdigest()


@pytest.mark.parametrize("claim", ["0" * 64, "f" * 64])
def test_a_card_whose_sha256_disagrees_with_its_file_is_refused(tmp_path: Path, claim: str) -> None:
    card = load_card(tiny_copy(tmp_path, sha256=claim))
    with pytest.raises(ModelError, match=f"claims sha256 {claim[:12]} but tiny.tflite hashes to") as err:
        DeviceTwin("cam1", card)
    assert "\n" not in str(err.value)


def test_without_a_claim_the_twin_publishes_the_files_hash(tmp_path: Path) -> None:
    path = tiny_copy(tmp_path, sha256=None)
    twin = DeviceTwin("cam1", load_card(path))
    assert twin.model_id == file_hash(path)[:12] != "0" * 12
    assert hashlib.sha256(twin.classifier.model_bytes).hexdigest() == file_hash(path)  # the bytes it runs


def test_the_camera_cli_says_so_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tiny_copy(tmp_path, sha256="0" * 64)
    rc = main(
        [
            "sim",
            "camera",
            "--device",
            "cam1",
            "--card",
            str(path),
            "--source",
            str(SAMPLES_DIR),
            "--broker",
            "mqtt://127.0.0.1:1",
        ]
    )
    assert rc != 0
    one_line_error(capsys, "claims sha256 000000000000")


def test_an_announced_card_that_lies_about_its_file_is_not_loaded(tmp_path: Path) -> None:
    current = tiny_copy(tmp_path / "current")
    twin = DeviceTwin("cam1", load_card(current))
    before = twin.model_id
    # the announcement and the new card agree with each other, but not with the file the card names
    lie = "ab" * 32
    other = tiny_copy(tmp_path / "other", sha256=lie)
    payload = mc.encode_model_announcement(sha256=lie, classes=load_card(other).classes, card=str(other), ts=1.0)
    twin._cmds.put((mc.model_topic(twin.root), payload))
    twin.handle_pending()
    assert twin.model_id == before and twin.stats.model_reloads == 0 and twin.stats.rejected_cmds == 1

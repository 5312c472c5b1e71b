"""The committed golden vectors are exactly what the Python reference computes today.

The C++ core is tested against ``tests/data/golden`` (ctest); this test regenerates
those files from the Python side and fails on any difference, so a change to
``sortcam.preprocess``, ``device_core``, ``mqtt_contract`` or ``serial_contract`` cannot
leave the firmware behind unnoticed. After an intended change (or a new shipped model),
regenerate with ``python -m sortcam.tools.golden`` and rerun the C++ tests.
"""

from __future__ import annotations

from pathlib import Path

from sortcam.tools import golden


def test_golden_vectors_are_up_to_date(tmp_path: Path) -> None:
    golden.generate(tmp_path)
    diffs = golden.compare(tmp_path, golden.GOLDEN_DIR)
    assert not diffs, (
        f"golden vectors differ from the Python reference in {', '.join(diffs[:8])}: "
        "run 'python -m sortcam.tools.golden', then the C++ tests (scripts/test.sh)"
    )


def test_compare_notices_a_changed_byte(tmp_path: Path) -> None:
    golden.generate(tmp_path)
    target = tmp_path / "luts.txt"
    text = target.read_text()
    target.write_text(text[:-2] + ("0" if text[-2] != "0" else "1") + "\n")
    assert golden.compare(tmp_path, golden.GOLDEN_DIR) == ["luts.txt"]


def test_golden_photos_carry_their_attribution() -> None:
    readme = (golden.GOLDEN_DIR / "images" / "README.md").read_text()
    assert "Gary Thung" in readme and "MIT" in readme
    for name in golden.IMAGES:
        assert (golden.GOLDEN_DIR / "images" / name).is_file()

"""The header check's own machinery, without the pack or the compiler (tests/firmware/idf_check.py).

platformio.ini's camera envs (extends, references, IDF's <defaults>.<target> rule), the
sources the check parses, and sdkconfig.h generation from the IDF defaults and the firmware's
own sdkconfig.defaults.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import idf_check
import pytest

ENVS = idf_check.camera_envs()
SOURCES, _ = idf_check.app_sources()
BOARD_TARGETS = idf_check.BOARD_TARGETS


def test_every_app_source_is_checked() -> None:
    """What the check parses is what the app component compiles: every .cc under firmware/src."""
    src = idf_check.REPO / "firmware" / "src"
    on_disk = {p.resolve() for p in src.rglob("*.cc") if "sorter" not in p.relative_to(src).parts}
    assert on_disk <= set(SOURCES), f"not in firmware/src/CMakeLists.txt: {sorted(on_disk - set(SOURCES))}"
    core = idf_check.REPO / "firmware" / "lib" / "sortcam_core" / "src"
    assert {p.resolve() for p in core.glob("*.cc")} <= set(SOURCES)
    assert [e.name for e in ENVS] == ["esp32cam", "esp32s3cam"]


def test_pin_map_table_lists_every_board() -> None:
    header = (idf_check.REPO / "firmware" / "src" / "board" / "camera_pins.h").read_text()
    assert set(re.findall(r"defined\(SORTCAM_CAMERA_BOARD_(\w+)\)", header)) == set(BOARD_TARGETS)
    assert {env.target for env in ENVS} == set(BOARD_TARGETS.values())


# --- sdkconfig.h generation -------------------------------------------------------------


def test_generated_sdkconfig_holds_every_firmware_setting(tmp_path: Path) -> None:
    """Each setting of the env's files, the later file winning (a choice member clears the others)."""
    for env in ENVS:
        values = idf_check.sdkconfig_values(env.target, env.sdkconfig_defaults)
        header = (idf_check.write_sdkconfig_h(env, tmp_path / env.name) / "sdkconfig.h").read_text()
        _, choices = idf_check._idf_defaults(
            [idf_check.IDF_DEFAULTS / "common.defaults", idf_check.IDF_DEFAULTS / f"{env.target}.defaults"]
        )
        expected: dict[str, str] = {}
        for path in env.sdkconfig_defaults:
            for name, value in idf_check._settings(path):
                for choice in choices:
                    if value == "y" and name in choice.members:
                        expected.update({m: "n" for m in choice.members})
                expected[name] = value
        for name, value in expected.items():
            assert values[name] == value, name
            if value != "n":
                assert f"#define {name} {'1' if value == 'y' else value}\n" in header
        assert f'#define CONFIG_IDF_TARGET "{env.target}"\n' in header


def test_sdkconfig_choices_conditions_and_derived_values(tmp_path: Path) -> None:
    fw = tmp_path / "sdkconfig.defaults"
    fw.write_text(
        "CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ_240=y\nCONFIG_ESPTOOLPY_FLASHSIZE_8MB=y\n"
        "# CONFIG_ESP_TASK_WDT_INIT is not set\nCONFIG_MY_OWN=42\n"
    )
    values = idf_check.sdkconfig_values("esp32s3", [fw])
    assert values["CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ"] == "240"
    assert values["CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ_160"] == "n"
    assert values["CONFIG_ESPTOOLPY_FLASHSIZE"] == '"8MB"'
    assert values["CONFIG_ESP_TASK_WDT_INIT"] == "n"
    assert values["CONFIG_MY_OWN"] == "42"
    assert "CONFIG_SPIRAM_MODE_QUAD" not in values  # PSRAM options only exist with CONFIG_SPIRAM
    header = idf_check.render_sdkconfig_h(values, ["x"])
    assert "CONFIG_ESP_TASK_WDT_INIT" not in header and "#define CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ 240\n" in header

    fw.write_text("CONFIG_SPIRAM=y\nCONFIG_SPIRAM_MODE_OCT=y\nCONFIG_SPIRAM_SPEED_80M=y\n")
    values = idf_check.sdkconfig_values("esp32s3", [fw])
    assert (values["CONFIG_SPIRAM_MODE_OCT"], values["CONFIG_SPIRAM_MODE_QUAD"]) == ("y", "n")
    assert values["CONFIG_SPIRAM_SPEED"] == "80"

    fw.write_text("CONFIG_ESP_BROWNOUT_DET_LVL=3\n")
    with pytest.raises(idf_check.CheckSetupError, match="select one of"):
        idf_check.sdkconfig_values("esp32", [fw])
    fw.write_text("CONFIG_PARTITION_TABLE_SINGLE_APP=n\n")
    with pytest.raises(idf_check.CheckSetupError, match="0 selected"):
        idf_check.sdkconfig_values("esp32", [fw])
    fw.write_text("CONFIG_SPIRAM=1 2\nnonsense\n")
    with pytest.raises(idf_check.CheckSetupError, match="not an sdkconfig line"):
        idf_check.sdkconfig_values("esp32", [fw])


def test_target_specific_defaults_follow_their_file(tmp_path: Path) -> None:
    """IDF applies F.<target> right after each SDKCONFIG_DEFAULTS file F."""
    ini = tmp_path / "platformio.ini"
    (tmp_path / "a").write_text("CONFIG_X=1\n")
    (tmp_path / "a.esp32s3").write_text("CONFIG_X=2\n")
    (tmp_path / "b").write_text("CONFIG_Y=1\n")
    ini.write_text(
        "[secrets]\nname = cam\n[env]\nbuild_flags = -DBASE\n"
        f"[env:s3]\nframework = espidf\nboard = any\nboard_build.mcu = esp32s3\ncustom_pins = eye\n"
        f"board_build.cmake_extra_args = -DSDKCONFIG_DEFAULTS={tmp_path}/a;{tmp_path}/b\n"
        "build_flags = ${env.build_flags} -DNAME='\"${secrets.name}\"' -DPINS_${this.custom_pins}\n"
        "[env:sorter]\nframework = arduino\nboard = esp32dev\n"
        "[env:xiao]\nextends = env:s3\ncustom_pins = xiao\n"
    )
    env, child = idf_check.camera_envs(ini)
    assert env.target == "esp32s3"
    assert env.sdkconfig_defaults == (tmp_path / "a", tmp_path / "a.esp32s3", tmp_path / "b")
    assert env.defines == ("-DBASE", '-DNAME="cam"', "-DPINS_eye")
    # extends: the parent's options, with ${this.*} read in the child, as PlatformIO does
    assert (child.name, child.target, child.defines[-1]) == ("xiao", "esp32s3", "-DPINS_xiao")


def test_missing_pack_or_compiler_is_one_reason(tmp_path: Path) -> None:
    toolchain, why = idf_check.find_toolchain({idf_check.PACK_ENV: str(tmp_path / "none")})
    assert toolchain is None and why == f"no ESP-IDF header pack at {tmp_path / 'none'} (set SORTCAM_IDF_HEADERS)"
    (tmp_path / "include-dirs.esp32.txt").write_text("")
    toolchain, why = idf_check.find_toolchain({idf_check.PACK_ENV: str(tmp_path), idf_check.CXX_ENV: "no-such-g++"})
    assert toolchain is None and why.startswith("no no-such-g++ on PATH") and "\n" not in why


def test_ci_runs_the_header_check() -> None:
    """Under CI=true a missing header pack or compiler is a failure, not a skip."""
    if os.environ.get("CI", "").lower() != "true":
        return  # elsewhere test_idf_headers.py says in one line why it is skipped
    toolchain, why = idf_check.find_toolchain()
    assert toolchain is not None, f"CI=true requires the firmware header check: {why}"

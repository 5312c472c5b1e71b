"""The camera firmware parses against the real ESP-IDF 5.5 headers (tests/firmware/idf_check.py).

One test case per camera env and C++ file, in gnu++17 and gnu++2b; a failure names the file
and the compiler's first error. Planted API mistakes prove the check rejects what the real
toolchain would. Without the header pack or the compiler the check is skipped with one
reason; under ``CI=true`` that is a failure instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import idf_check
import pytest

ENVS = idf_check.camera_envs()
SOURCES, INCLUDES = idf_check.app_sources()


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true requires the firmware header check", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def toolchain() -> idf_check.Toolchain:
    pack = idf_check.find_pack()
    if pack is None:
        _unavailable(
            f"firmware header check skipped: no ESP-IDF header pack at {idf_check.DEFAULT_PACK} "
            f"(set {idf_check.PACK_ENV})"
        )
    cxx = idf_check.find_cxx()
    if cxx is None:
        _unavailable(
            f"firmware header check skipped: no {idf_check.DEFAULT_CXX} (scripts/setup.sh --dev installs "
            f"gcc-arm-none-eabi; or set {idf_check.CXX_ENV})"
        )
    assert pack is not None and cxx is not None
    return idf_check.Toolchain(pack, cxx)


@pytest.fixture(scope="session")
def sdkconfig_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A generated sdkconfig.h folder per camera env."""
    root = tmp_path_factory.mktemp("sdkconfig")
    return {env.name: idf_check.write_sdkconfig_h(env, root / env.name) for env in ENVS}


def _check(toolchain: idf_check.Toolchain, env: idf_check.CameraEnv, sdkconfig_dir: Path, source: Path,
           defines: tuple[str, ...] | None = None) -> None:
    for standard in idf_check.STANDARDS:
        result = idf_check.parse(toolchain, env.target, sdkconfig_dir, source, standard, INCLUDES,
                                 env.defines if defines is None else defines)
        if not result.ok:
            context = "\n".join(result.output.splitlines()[:12])
            pytest.fail(f"{source.relative_to(idf_check.REPO)} [{env.name}, {standard}]: {result.first_error}\n"
                        f"{context}", pytrace=False)


@pytest.mark.parametrize("env", ENVS, ids=lambda e: e.name)
@pytest.mark.parametrize("source", SOURCES, ids=lambda s: str(s.relative_to(idf_check.REPO / "firmware")))
def test_firmware_file_parses(toolchain: idf_check.Toolchain, sdkconfig_dirs: dict[str, Path],
                              env: idf_check.CameraEnv, source: Path) -> None:
    _check(toolchain, env, sdkconfig_dirs[env.name], source)


def test_every_app_source_is_checked() -> None:
    """What the check parses is what the app component compiles: every .cc under firmware/src."""
    src = idf_check.REPO / "firmware" / "src"
    on_disk = {p.resolve() for p in src.rglob("*.cc") if "sorter" not in p.relative_to(src).parts}
    assert on_disk <= set(SOURCES), f"not in firmware/src/CMakeLists.txt: {sorted(on_disk - set(SOURCES))}"
    core = idf_check.REPO / "firmware" / "lib" / "sortcam_core" / "src"
    assert {p.resolve() for p in core.glob("*.cc")} <= set(SOURCES)
    assert [e.name for e in ENVS] == ["esp32cam", "esp32s3cam"]


# --- camera pin maps: every board of camera_pins.h, on its own chip and refused on the other

BOARD_FLAG = "-DSORTCAM_CAMERA_BOARD_"
BOARD_TARGETS = {
    "ai_thinker": "esp32",
    "esp32s3_eye": "esp32s3",
    "xiao_esp32s3_sense": "esp32s3",
    "freenove_esp32s3_cam": "esp32s3",
}
PIN_USERS = [idf_check.REPO / "firmware" / "src" / "board" / name for name in ("camera.cc", "config.cc")]


def test_pin_map_table_lists_every_board() -> None:
    import re

    header = (idf_check.REPO / "firmware" / "src" / "board" / "camera_pins.h").read_text()
    assert set(re.findall(r"defined\(SORTCAM_CAMERA_BOARD_(\w+)\)", header)) == set(BOARD_TARGETS)
    assert {env.target for env in ENVS} == set(BOARD_TARGETS.values())


@pytest.mark.parametrize("board", list(BOARD_TARGETS))
@pytest.mark.parametrize("env", ENVS, ids=lambda e: e.name)
def test_camera_pin_map(toolchain: idf_check.Toolchain, sdkconfig_dirs: dict[str, Path],
                        env: idf_check.CameraEnv, board: str) -> None:
    defines = tuple(d for d in env.defines if not d.startswith(BOARD_FLAG)) + (f"{BOARD_FLAG}{board}=1",)
    if BOARD_TARGETS[board] == env.target:
        for source in PIN_USERS:
            _check(toolchain, env, sdkconfig_dirs[env.name], source, defines)
        return
    result = idf_check.parse(toolchain, env.target, sdkconfig_dirs[env.name], PIN_USERS[0], "gnu++2b", INCLUDES,
                             defines)
    assert not result.ok and "names a board of another chip" in result.output, result.first_error


def test_env_without_camera_board_is_refused(toolchain: idf_check.Toolchain,
                                             sdkconfig_dirs: dict[str, Path]) -> None:
    env = ENVS[0]
    defines = tuple(d for d in env.defines if not d.startswith(BOARD_FLAG))
    result = idf_check.parse(toolchain, env.target, sdkconfig_dirs[env.name], PIN_USERS[0], "gnu++2b", INCLUDES,
                             defines)
    assert not result.ok and "set custom_camera_board" in result.first_error


# --- planted mistakes: each a small file, right and wrong by one edit --------------------

PLANTED = {
    "camera_config_t field": (
        '#include "esp_camera.h"\n'
        "camera_config_t Config() { camera_config_t c = {}; c.{X} = 26; return c; }\n",
        "pin_sccb_sda", "pin_sda", "has no member named 'pin_sda'",
    ),
    "esp_camera_init argument": (
        '#include "esp_camera.h"\n'
        "esp_err_t Start(const camera_config_t& c) { return esp_camera_init({X}); }\n",
        "&c", "&c, 2", "too many arguments",
    ),
    "IDF 4 esp_mqtt_client_config_t.uri": (
        '#include "mqtt_client.h"\n'
        "esp_mqtt_client_handle_t Make() {\n"
        '  esp_mqtt_client_config_t config = {}; config.{X} = "mqtt://broker:1883";\n'
        "  return esp_mqtt_client_init(&config);\n}\n",
        "broker.address.uri", "uri", "has no member named 'uri'",
    ),
    "IDF 4 esp_task_wdt_init(timeout, panic)": (
        '#include "esp_task_wdt.h"\n'
        "esp_err_t Start() { esp_task_wdt_config_t config = {}; (void)config; return esp_task_wdt_init({X}); }\n",
        "&config", "5, true", "too many arguments",
    ),
    # IDF 5.5's esp_log() carries no format attribute, so ESP_LOGx arguments go unchecked
    # here as on the real build; snprintf's are checked.
    "int32_t formatted with %d (it is long on xtensa)": (
        '#include <cstdint>\n#include <cstdio>\n'
        'void Show(char* out, int32_t v) { std::snprintf(out, 16, "{X}", v); }\n',
        "%ld", "%d", "-Werror=format",
    ),
    "IDF call without its header": (
        "#include <cstdint>\n{X}\n"
        "int64_t Now() { return esp_timer_get_time(); }\n",
        '#include "esp_timer.h"', "", "'esp_timer_get_time' was not declared",
    ),
}


@pytest.fixture()
def planted(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "planted.cc"


@pytest.mark.parametrize("kind", list(PLANTED))
def test_planted_mistake_is_rejected(toolchain: idf_check.Toolchain, sdkconfig_dirs: dict[str, Path],
                                     planted: Path, kind: str) -> None:
    template, right, wrong, expected = PLANTED[kind]
    env = ENVS[0]
    for standard in idf_check.STANDARDS:
        planted.write_text(template.replace("{X}", right))
        ok = idf_check.parse(toolchain, env.target, sdkconfig_dirs[env.name], planted, standard, INCLUDES)
        assert ok.ok, f"the right version of {kind!r} should parse: {ok.first_error}"
        planted.write_text(template.replace("{X}", wrong))
        bad = idf_check.parse(toolchain, env.target, sdkconfig_dirs[env.name], planted, standard, INCLUDES)
        assert not bad.ok, f"{kind!r} was not rejected ({standard})"
        assert expected in bad.output, f"{kind!r} rejected for another reason: {bad.first_error}"


def test_first_error_names_file_and_line(toolchain: idf_check.Toolchain, sdkconfig_dirs: dict[str, Path],
                                         planted: Path) -> None:
    planted.write_text('#include "esp_camera.h"\nint x = esp_camera_init(nullptr, 1);\nint y = nope;\n')
    env = ENVS[0]
    result = idf_check.parse(toolchain, env.target, sdkconfig_dirs[env.name], planted, "gnu++17", INCLUDES)
    assert result.first_error.startswith(f"{planted}:2:")
    assert "error:" in result.first_error and "nope" not in result.first_error


# --- sdkconfig.h generation -------------------------------------------------------------


def test_generated_sdkconfig_holds_every_firmware_setting(tmp_path: Path) -> None:
    """Each setting of the env's files, the later file winning (a choice member clears the others)."""
    for env in ENVS:
        values = idf_check.sdkconfig_values(env.target, env.sdkconfig_defaults)
        header = (idf_check.write_sdkconfig_h(env, tmp_path / env.name) / "sdkconfig.h").read_text()
        _, choices = idf_check._idf_defaults([idf_check.IDF_DEFAULTS / "common.defaults",
                                              idf_check.IDF_DEFAULTS / f"{env.target}.defaults"])
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
    fw.write_text("CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ_240=y\nCONFIG_ESPTOOLPY_FLASHSIZE_8MB=y\n"
                  "# CONFIG_ESP_TASK_WDT_INIT is not set\nCONFIG_MY_OWN=42\n")
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

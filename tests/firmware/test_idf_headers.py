"""The camera firmware parses against the real ESP-IDF 5.5 headers (tests/firmware/idf_check.py).

One test case per camera env and C++ file, in gnu++17 and gnu++2b; a failure names the file
and the compiler's first error. Planted API mistakes prove the check rejects what the real
toolchain would. Without the header pack or the compiler the check is skipped with one
reason (and under ``CI=true`` test_idf_check.py fails).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import idf_check
import pytest

ENVS = idf_check.camera_envs()
SOURCES, INCLUDES = idf_check.app_sources()
TOOLCHAIN, MISSING = idf_check.find_toolchain()
if TOOLCHAIN is None:
    # One line for the whole module. Under CI=true, test_idf_check.py's
    # test_ci_runs_the_header_check fails for the same reason.
    pytest.skip(f"firmware header check skipped: {MISSING}", allow_module_level=True)


@pytest.fixture(scope="session")
def toolchain() -> idf_check.Toolchain:
    assert TOOLCHAIN is not None
    return TOOLCHAIN


@pytest.fixture(scope="session")
def sdkconfig_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A generated sdkconfig.h folder per camera env."""
    root = tmp_path_factory.mktemp("sdkconfig")
    return {env.name: idf_check.write_sdkconfig_h(env, root / env.name) for env in ENVS}


def _check(
    toolchain: idf_check.Toolchain,
    env: idf_check.CameraEnv,
    sdkconfig_dir: Path,
    source: Path,
    defines: tuple[str, ...] | None = None,
) -> None:
    for standard in idf_check.STANDARDS:
        result = idf_check.parse(
            toolchain,
            env.target,
            sdkconfig_dir,
            source,
            standard,
            INCLUDES,
            env.defines if defines is None else defines,
        )
        if not result.ok:
            context = "\n".join(result.output.splitlines()[:12])
            pytest.fail(
                f"{source.relative_to(idf_check.REPO)} [{env.name}, {standard}]: {result.first_error}\n{context}",
                pytrace=False,
            )


@pytest.mark.parametrize("env", ENVS, ids=lambda e: e.name)
@pytest.mark.parametrize("source", SOURCES, ids=lambda s: str(s.relative_to(idf_check.REPO / "firmware")))
def test_firmware_file_parses(
    toolchain: idf_check.Toolchain, sdkconfig_dirs: dict[str, Path], env: idf_check.CameraEnv, source: Path
) -> None:
    _check(toolchain, env, sdkconfig_dirs[env.name], source)


# --- camera pin maps: every board of camera_pins.h, on its own chip and refused on the other

BOARD_FLAG = "-DSORTCAM_CAMERA_BOARD_"
BOARD_TARGETS = idf_check.BOARD_TARGETS
PIN_USERS = [idf_check.REPO / "firmware" / "src" / "board" / name for name in ("camera.cc", "config.cc")]


@pytest.mark.parametrize("board", list(BOARD_TARGETS))
@pytest.mark.parametrize("env", ENVS, ids=lambda e: e.name)
def test_camera_pin_map(
    toolchain: idf_check.Toolchain, sdkconfig_dirs: dict[str, Path], env: idf_check.CameraEnv, board: str
) -> None:
    defines = tuple(d for d in env.defines if not d.startswith(BOARD_FLAG)) + (f"{BOARD_FLAG}{board}=1",)
    if BOARD_TARGETS[board] == env.target:
        for source in PIN_USERS:
            _check(toolchain, env, sdkconfig_dirs[env.name], source, defines)
        return
    result = idf_check.parse(
        toolchain, env.target, sdkconfig_dirs[env.name], PIN_USERS[0], "gnu++2b", INCLUDES, defines
    )
    assert not result.ok and "names a board of another chip" in result.output, result.first_error


def test_env_without_camera_board_is_refused(toolchain: idf_check.Toolchain, sdkconfig_dirs: dict[str, Path]) -> None:
    env = ENVS[0]
    defines = tuple(d for d in env.defines if not d.startswith(BOARD_FLAG))
    result = idf_check.parse(
        toolchain, env.target, sdkconfig_dirs[env.name], PIN_USERS[0], "gnu++2b", INCLUDES, defines
    )
    assert not result.ok and "set custom_camera_board" in result.first_error


# --- planted mistakes: each a small file, right and wrong by one edit --------------------

PLANTED = {
    "camera_config_t field": (
        '#include "esp_camera.h"\ncamera_config_t Config() { camera_config_t c = {}; c.{X} = 26; return c; }\n',
        "pin_sccb_sda",
        "pin_sda",
        "has no member named 'pin_sda'",
    ),
    "esp_camera_init argument": (
        '#include "esp_camera.h"\nesp_err_t Start(const camera_config_t& c) { return esp_camera_init({X}); }\n',
        "&c",
        "&c, 2",
        "too many arguments",
    ),
    "IDF 4 esp_mqtt_client_config_t.uri": (
        '#include "mqtt_client.h"\n'
        "esp_mqtt_client_handle_t Make() {\n"
        '  esp_mqtt_client_config_t config = {}; config.{X} = "mqtt://broker:1883";\n'
        "  return esp_mqtt_client_init(&config);\n}\n",
        "broker.address.uri",
        "uri",
        "has no member named 'uri'",
    ),
    "IDF 4 esp_task_wdt_init(timeout, panic)": (
        '#include "esp_task_wdt.h"\n'
        "esp_err_t Start() { esp_task_wdt_config_t config = {}; (void)config; return esp_task_wdt_init({X}); }\n",
        "&config",
        "5, true",
        "too many arguments",
    ),
    # IDF 5.5's esp_log() carries no format attribute, so ESP_LOGx arguments go unchecked
    # here as on the real build; snprintf's are checked.
    "int32_t formatted with %d (it is long on xtensa)": (
        "#include <cstdint>\n#include <cstdio>\n"
        'void Show(char* out, int32_t v) { std::snprintf(out, 16, "{X}", v); }\n',
        "%ld",
        "%d",
        "-Werror=format",
    ),
    "IDF call without its header": (
        "#include <cstdint>\n{X}\nint64_t Now() { return esp_timer_get_time(); }\n",
        '#include "esp_timer.h"',
        "",
        "'esp_timer_get_time' was not declared",
    ),
}


@pytest.fixture()
def planted(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "planted.cc"


@pytest.mark.parametrize("kind", list(PLANTED))
def test_planted_mistake_is_rejected(
    toolchain: idf_check.Toolchain, sdkconfig_dirs: dict[str, Path], planted: Path, kind: str
) -> None:
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


def test_first_error_names_file_and_line(
    toolchain: idf_check.Toolchain, sdkconfig_dirs: dict[str, Path], planted: Path
) -> None:
    planted.write_text('#include "esp_camera.h"\nint x = esp_camera_init(nullptr, 1);\nint y = nope;\n')
    env = ENVS[0]
    result = idf_check.parse(toolchain, env.target, sdkconfig_dirs[env.name], planted, "gnu++17", INCLUDES)
    assert result.first_error.startswith(f"{planted}:2:")
    assert "error:" in result.first_error and "nope" not in result.first_error

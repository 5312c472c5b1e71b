"""Parse the camera firmware against the real ESP-IDF headers, without the ESP32 toolchain.

PlatformIO cannot download the xtensa toolchain on these machines, so the board code is
type-checked instead: every C++ file that ``firmware/src/CMakeLists.txt`` compiles into the
camera app (the app, ``board/``, the portable core, the generated model array) is run
through ``arm-none-eabi-g++ -fsyntax-only`` (Debian's: 32-bit, newlib, ``int32_t`` is
``long`` as on xtensa) with the include path, defines and warning flags of an ESP-IDF 5.5
build, against the unmodified public headers of exactly the versions ``platformio.ini``
pins. A wrong function, argument, field, enum, format or an IDF 4 API is an error here as
on the real toolchain. Nothing is linked and nothing runs.

Inputs, all read, never copied into the project:

- the header pack: ``$SORTCAM_IDF_HEADERS``, else ``<repo>/../shared/esp-idf-headers``
  (its README says what it holds and which flags worked);
- the compiler: ``$SORTCAM_IDF_CXX``, else ``arm-none-eabi-g++`` on PATH (Debian packages
  ``gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib``);
- ``platformio.ini``: every ``framework = espidf`` env is a camera env; its MCU, its
  ``-D`` build flags and its ``SDKCONFIG_DEFAULTS`` files;
- ``sdkconfig.h`` is generated per env (``write_sdkconfig_h``) from the IDF defaults in
  ``tests/firmware/idf_defaults/`` and then the env's own sdkconfig.defaults, in the order
  IDF applies them, so the check reads the settings the build reads.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLATFORMIO_INI = REPO / "platformio.ini"
APP_CMAKELISTS = REPO / "firmware" / "src" / "CMakeLists.txt"
IDF_DEFAULTS = Path(__file__).resolve().parent / "idf_defaults"

PACK_ENV = "SORTCAM_IDF_HEADERS"
CXX_ENV = "SORTCAM_IDF_CXX"
DEFAULT_PACK = REPO.parent / "shared" / "esp-idf-headers"
DEFAULT_CXX = "arm-none-eabi-g++"

# IDF 5.5 compiles C++ as gnu++2b; gnu++17 is what the code promises to stay within.
STANDARDS = ("gnu++17", "gnu++2b")

# As IDF 5.5's build passes them (the pack's README, "What worked").
IDF_DEFINES = (
    "-DESP_PLATFORM",
    '-DIDF_VER="v5.5"',
    "-D_GNU_SOURCE",
    "-D_GLIBCXX_USE_POSIX_SEMAPHORE",
    "-D_GLIBCXX_HAVE_POSIX_SEMAPHORE",
    "-D_POSIX_READER_WRITER_LOCKS",
    "-DTF_LITE_STATIC_MEMORY",
    "-D__XTENSA__",
    '-DMBEDTLS_CONFIG_FILE="mbedtls/esp_config.h"',
)
IDF_FLAGS = (
    "-fsyntax-only",
    "-fno-rtti",
    "-fno-exceptions",
    "-Wall",
    "-Werror",
    "-Wextra",
    "-Wno-error=extra",
    "-Wno-unused-parameter",
    "-Wno-sign-compare",
    "-Wno-enum-conversion",
    "-Wno-error=unused-function",
    "-Wno-error=unused-variable",
    "-Wno-error=unused-but-set-variable",
    "-Wno-error=deprecated-declarations",
)

# Components the app uses that the pack's include-dirs lists (written before it did) leave out.
EXTRA_PACK_DIRS = ("esp-idf/components/json/cJSON",)

# The camera boards of firmware/src/board/camera_pins.h (custom_camera_board) and their chips.
BOARD_TARGETS = {
    "ai_thinker": "esp32",
    "esp32s3_eye": "esp32s3",
    "xiao_esp32s3_sense": "esp32s3",
    "freenove_esp32s3_cam": "esp32s3",
}

# PlatformIO boards whose MCU is known without the platform's board files; other envs
# name theirs with board_build.mcu.
BOARD_MCU = {"esp32cam": "esp32", "esp32dev": "esp32"}


class CheckSetupError(Exception):
    """The check's own inputs are inconsistent (platformio.ini, CMakeLists.txt, defaults)."""


@dataclass(frozen=True)
class Toolchain:
    pack: Path  # the header pack folder
    cxx: str  # the compiler


# --- where the pack and the compiler are --------------------------------------------------


def find_pack(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The header pack folder, or None when it is not there."""
    pack = Path(environ[PACK_ENV]) if environ.get(PACK_ENV) else DEFAULT_PACK
    return pack if (pack / "include-dirs.esp32.txt").is_file() else None


def find_cxx(environ: Mapping[str, str] = os.environ) -> str | None:
    """Path of the 32-bit newlib C++ compiler, or None."""
    return shutil.which(environ.get(CXX_ENV) or DEFAULT_CXX)


def find_toolchain(environ: Mapping[str, str] = os.environ) -> tuple[Toolchain | None, str]:
    """The pack and the compiler, or None and a one-line reason naming what is missing where."""
    pack = find_pack(environ)
    if pack is None:
        where = environ.get(PACK_ENV) or str(DEFAULT_PACK)
        return None, f"no ESP-IDF header pack at {where} (set {PACK_ENV})"
    cxx = find_cxx(environ)
    if cxx is None:
        name = environ.get(CXX_ENV) or DEFAULT_CXX
        return None, f"no {name} on PATH (scripts/setup.sh --dev installs gcc-arm-none-eabi; or set {CXX_ENV})"
    return Toolchain(pack, cxx), ""


# --- platformio.ini ---------------------------------------------------------------------


@dataclass(frozen=True)
class CameraEnv:
    """One ``framework = espidf`` env of platformio.ini, as the header check needs it."""

    name: str
    target: str  # IDF target: esp32, esp32s3
    defines: tuple[str, ...]  # the env's -D build flags, as the compiler gets them
    sdkconfig_defaults: tuple[Path, ...]  # the firmware's own files, in IDF's order


_REF = re.compile(r"\$\{([^}]+)\}")


def _read_ini(path: Path) -> configparser.ConfigParser:
    ini = configparser.ConfigParser(interpolation=None, comment_prefixes=(";", "#"), inline_comment_prefixes=(";",))
    ini.optionxform = str  # type: ignore[assignment,method-assign]
    ini.read(path)
    return ini


def _lookup_order(ini: configparser.ConfigParser, section: str, depth: int = 0) -> list[str]:
    """PlatformIO's order: the section, the sections it ``extends`` (in turn), then [env]."""
    if depth > 8:
        raise CheckSetupError(f"platformio.ini: 'extends' nests too deeply at [{section}]")
    order = [section]
    if ini.has_option(section, "extends"):
        for parent in (p.strip() for p in ini.get(section, "extends").split(",")):
            if not ini.has_section(parent):
                raise CheckSetupError(f"platformio.ini: [{section}] extends unknown [{parent}]")
            order += [s for s in _lookup_order(ini, parent, depth + 1) if s not in order and s != "env"]
    if section.startswith("env:"):
        order.append("env")
    return order


def _option(ini: configparser.ConfigParser, section: str, name: str) -> str | None:
    """An option of an env as PlatformIO reads it, with ${section.option} references resolved."""
    for sec in _lookup_order(ini, section):
        if ini.has_section(sec) and ini.has_option(sec, name):
            return _resolve(ini, section, ini.get(sec, name), depth=0)
    return None


def _resolve(ini: configparser.ConfigParser, section: str, value: str, depth: int) -> str:
    if depth > 8:
        raise CheckSetupError(f"platformio.ini: references nest too deeply in [{section}]")

    def sub(match: re.Match[str]) -> str:
        ref_section, _, ref_name = match.group(1).rpartition(".")
        ref_section = section if ref_section == "this" else ref_section
        for sec in _lookup_order(ini, ref_section) if ini.has_section(ref_section) else ():
            if ini.has_option(sec, ref_name):
                return _resolve(ini, ref_section, ini.get(sec, ref_name), depth + 1)
        raise CheckSetupError(f"platformio.ini: [{section}] refers to unknown ${{{match.group(1)}}}")

    return _REF.sub(sub, value)


def _target_defaults(files: Sequence[Path], target: str) -> tuple[Path, ...]:
    """IDF's rule: each SDKCONFIG_DEFAULTS file F is followed by F.<target> when that exists."""
    ordered: list[Path] = []
    for f in files:
        if not f.is_file():
            raise CheckSetupError(f"platformio.ini names {f.relative_to(REPO)}, which does not exist")
        ordered.append(f)
        specific = f.with_name(f"{f.name}.{target}")
        if specific.is_file():
            ordered.append(specific)
    return tuple(ordered)


def camera_envs(ini_path: Path = PLATFORMIO_INI) -> list[CameraEnv]:
    """Every ESP-IDF env of platformio.ini (the Arduino sorter is not a camera env)."""
    ini = _read_ini(ini_path)
    envs = []
    for section in ini.sections():
        if not section.startswith("env:") or _option(ini, section, "framework") != "espidf":
            continue
        name = section.removeprefix("env:")
        board = _option(ini, section, "board") or ""
        target = _option(ini, section, "board_build.mcu") or BOARD_MCU.get(board)
        if target is None:
            raise CheckSetupError(f"[{section}]: board {board!r} has no known MCU: set board_build.mcu")
        flags = shlex.split(_option(ini, section, "build_flags") or "")
        defines = tuple(f for f in flags if f.startswith("-D"))
        cmake_args = shlex.split(_option(ini, section, "board_build.cmake_extra_args") or "")
        defaults: list[Path] = []
        for arg in cmake_args:
            if arg.startswith("-DSDKCONFIG_DEFAULTS="):
                defaults += [REPO / p for p in arg.split("=", 1)[1].split(";") if p]
        if not defaults:
            raise CheckSetupError(f"[{section}] passes no SDKCONFIG_DEFAULTS in board_build.cmake_extra_args")
        envs.append(CameraEnv(name, target, defines, _target_defaults(defaults, target)))
    return envs


# --- the app component's sources --------------------------------------------------------


def app_sources(cmakelists: Path = APP_CMAKELISTS) -> tuple[list[Path], list[Path]]:
    """(C++ sources, include dirs) of the camera app component, as its CMakeLists.txt lists them.

    The listed SRCS plus the portable core that the file globs in; relative to its folder.
    """
    text = re.sub(r"#[^\n]*", "", cmakelists.read_text())
    base = cmakelists.parent
    block = re.search(r"idf_component_register\((.*?)\)", text, re.S)
    if block is None:
        raise CheckSetupError(f"{cmakelists.relative_to(REPO)}: no idf_component_register(...)")
    body = block.group(1)
    srcs_part = re.search(r"SRCS(.*?)(?:INCLUDE_DIRS|REQUIRES|PRIV_REQUIRES|$)", body, re.S)
    incs_part = re.search(r"INCLUDE_DIRS(.*?)(?:REQUIRES|PRIV_REQUIRES|SRCS|$)", body, re.S)
    sources = [base / s for s in re.findall(r'"([^"$]+)"', srcs_part.group(1) if srcs_part else "")]
    for glob in re.findall(r'file\(GLOB\s+\w+\s+"\$\{CMAKE_CURRENT_LIST_DIR\}/([^"]+)"\)', text):
        sources += sorted(base.glob(glob))
    includes = [base / s for s in re.findall(r'"([^"$]+)"', incs_part.group(1) if incs_part else "")]
    return [s.resolve() for s in sources], [i.resolve() for i in includes]


# --- sdkconfig.h ------------------------------------------------------------------------


@dataclass
class _Choice:
    members: list[str]
    derived: str | None = None
    values: dict[str, str] = field(default_factory=dict)  # member -> derived value
    condition: str | None = None


_LINE = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_NOT_SET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")
_CHOICE = re.compile(r"^# choice(?: (CONFIG_\w+)(?: -> (CONFIG_\w+))?)?: (.+)$")
_IF = re.compile(r"^# if (CONFIG_\w+)$")


def _settings(path: Path) -> list[tuple[str, str]]:
    """(name, value) pairs of an sdkconfig(.defaults) file; 'n' for '# CONFIG_X is not set'."""
    out = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if m := _LINE.match(line):
            out.append((m.group(1), m.group(2)))
        elif m := _NOT_SET.match(line):
            out.append((m.group(1), "n"))
        elif line and not line.startswith("#"):
            raise CheckSetupError(f"{path}:{number}: not an sdkconfig line: {line!r}")
    return out


def _idf_defaults(paths: Sequence[Path]) -> tuple[list[tuple[str, str, str | None]], list[_Choice]]:
    defaults: list[tuple[str, str, str | None]] = []
    choices: list[_Choice] = []
    for path in paths:
        condition: str | None = None
        for number, raw in enumerate(path.read_text().splitlines(), 1):
            line = raw.strip()
            if m := _IF.match(line):
                condition = m.group(1)
            elif line == "# endif":
                condition = None
            elif m := _CHOICE.match(line):
                prefix, derived, tokens = m.group(1), m.group(2), m.group(3).split()
                if prefix is None:
                    choices.append(_Choice(members=tokens, condition=condition))
                    continue
                choice = _Choice(members=[], derived=derived or prefix, condition=condition)
                for token in tokens:
                    suffix, _, value = token.partition("=")
                    member = f"{prefix}_{suffix}"
                    choice.members.append(member)
                    choice.values[member] = value or suffix
                choices.append(choice)
            elif m := _LINE.match(line):
                defaults.append((m.group(1), m.group(2), condition))
            elif line and not line.startswith("#"):
                raise CheckSetupError(f"{path}:{number}: not an sdkconfig line: {line!r}")
    return defaults, choices


def sdkconfig_values(target: str, firmware_defaults: Sequence[Path]) -> dict[str, str]:
    """Kconfig values ('y', 'n', numbers, quoted strings) after the firmware's files."""
    defaults, choices = _idf_defaults([IDF_DEFAULTS / "common.defaults", IDF_DEFAULTS / f"{target}.defaults"])
    firmware = [s for f in firmware_defaults for s in _settings(f)]
    requested = dict(firmware)
    values: dict[str, str] = {}
    for name, value, condition in defaults:
        if condition is None or requested.get(condition, values.get(condition)) == "y":
            values[name] = value
    member_of = {m: c for c in choices for m in c.members}
    derived = {c.derived: c for c in choices if c.derived}
    for name, value in firmware:
        if name in derived:
            raise CheckSetupError(f"{name} follows from a choice: select one of {', '.join(derived[name].members)}")
        if value == "y" and name in member_of:
            for other in member_of[name].members:
                values[other] = "n"
        values[name] = value
    for choice in choices:
        if choice.condition is not None and values.get(choice.condition) != "y":
            continue
        selected = [m for m in choice.members if values.get(m) == "y"]
        if len(selected) != 1:
            raise CheckSetupError(f"choice {' '.join(choice.members)}: {len(selected)} selected, need exactly one")
        if choice.derived:
            values[choice.derived] = choice.values[selected[0]]
    return values


def render_sdkconfig_h(values: Mapping[str, str], sources: Sequence[str]) -> str:
    """The header IDF's kconfgen writes: y as 1, n left out, numbers and strings as they are."""
    lines = [
        "/* Generated for the header check by tests/firmware/idf_check.py from:",
        *(f" *   {s}" for s in sources),
        " * Do not edit: change the firmware's sdkconfig.defaults or tests/firmware/idf_defaults/. */",
        "#pragma once",
    ]
    for name, value in values.items():
        if value == "n":
            continue
        lines.append(f"#define {name} {'1' if value == 'y' else value}")
    return "\n".join(lines) + "\n"


def write_sdkconfig_h(env: CameraEnv, out_dir: Path) -> Path:
    """Writes out_dir/sdkconfig.h for env and returns out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = ["tests/firmware/idf_defaults/common.defaults", f"tests/firmware/idf_defaults/{env.target}.defaults"]
    sources += [str(p.relative_to(REPO)) for p in env.sdkconfig_defaults]
    text = render_sdkconfig_h(sdkconfig_values(env.target, env.sdkconfig_defaults), sources)
    (out_dir / "sdkconfig.h").write_text(text)
    return out_dir


# --- parsing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ParseResult:
    source: Path
    standard: str
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def first_error(self) -> str:
        """The compiler's first error line (file:line:col: error: ...), or its first line."""
        lines = self.output.splitlines()
        for line in lines:
            if re.search(r"\b(fatal )?error:", line):
                return line.replace(str(REPO) + "/", "")
        return lines[0] if lines else f"exit status {self.returncode}"


def command(
    toolchain: Toolchain,
    target: str,
    sdkconfig_dir: Path,
    source: Path,
    standard: str,
    includes: Sequence[Path],
    defines: Sequence[str] = (),
) -> list[str]:
    """The compiler command line for one file (the pack README's order of include dirs)."""
    pack = toolchain.pack
    dirs = [pack / "shims" / "newlib33", sdkconfig_dir, *includes]
    listed = (pack / f"include-dirs.{target}.txt").read_text().split()
    dirs += [pack / d for d in (*listed, *(e for e in EXTRA_PACK_DIRS if e not in listed))]
    return [
        toolchain.cxx,
        f"-std={standard}",
        *IDF_FLAGS,
        "-ffp-contract=off",
        *IDF_DEFINES,
        *defines,
        *(f"-I{d}" for d in dirs),
        str(source),
    ]


def parse(
    toolchain: Toolchain,
    target: str,
    sdkconfig_dir: Path,
    source: Path,
    standard: str,
    includes: Sequence[Path],
    defines: Sequence[str] = (),
    timeout_s: float = 300.0,
) -> ParseResult:
    """Runs the compiler on one file with -fsyntax-only; nothing is written."""
    argv = command(toolchain, target, sdkconfig_dir, source, standard, includes, defines)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, cwd=REPO)
    return ParseResult(source, standard, proc.returncode, proc.stderr + proc.stdout)

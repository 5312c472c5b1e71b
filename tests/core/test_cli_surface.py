"""What every ``sortcam`` command shows a user (issue 14): help with defaults and examples, one name
per concept with the old names as hidden aliases, and state kept out of the working folder."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from cli_errors import one_line_error

from sortcam.cli import build_parser, main
from sortcam.cli_help import commands


def _parsers() -> list[argparse.ArgumentParser]:
    return commands(build_parser())


@pytest.mark.parametrize("parser", _parsers(), ids=lambda p: p.prog.replace(" ", "-"))
def test_every_help_shows_defaults_and_ends_with_examples(parser: argparse.ArgumentParser) -> None:
    text = parser.format_help()
    tail = text.rstrip().splitlines()
    examples = (
        tail.index("examples:")
        if "examples:" in tail
        else next(i for i, line in enumerate(tail) if line.rstrip().endswith(("examples:", "example:")))
    )
    shown = [line for line in tail[examples + 1 :] if line.strip()]
    assert 1 <= len([s for s in shown if s.lstrip().startswith("sortcam ")]) <= 3, shown
    assert shown[-1].lstrip().startswith(("sortcam ", "--")), shown  # the help ends with an example
    for action in parser._actions:
        default = action.default
        if (
            not action.option_strings
            or action.help == argparse.SUPPRESS
            or action.nargs == 0
            or default in (None, argparse.SUPPRESS)
            or isinstance(default, (bool, list))
        ):
            continue
        assert "default" in (parser._get_formatter()._expand_help(action)).lower(), (parser.prog, action.dest)


def test_the_examples_name_only_options_that_exist() -> None:
    by_prog = {p.prog: p for p in _parsers()}
    for prog, parser in by_prog.items():
        epilog = parser.epilog or ""
        for line in epilog.splitlines():
            line = line.strip()
            if not line.startswith("sortcam "):
                continue
            words = line.split("#")[0].split()
            sub = next((by_prog[" ".join(words[:n])] for n in (3, 2) if " ".join(words[:n]) in by_prog), None)
            assert sub is not None, line
            known = {s for a in sub._actions for s in a.option_strings}
            for word in words:
                if word.startswith("--"):
                    assert word in known, f"{prog}: example {line!r} uses {word}, not an option of {sub.prog}"


@pytest.mark.parametrize(
    ("argv", "old", "new", "dest", "value"),
    [
        (["sim", "camera", "--source", "x", "--broker", "b", "--device", "d"], "--model", "--card", "card", "c.json"),
        (["sim", "camera", "--source", "x", "--broker", "b", "--device", "d"], "--count", "--items", "items", 5),
        (["demo"], "--model", "--card", "card", "c.json"),
        (["demo"], "--console-port", "--port", "port", 9090),
        (["demo"], "--console-data", "--data", "data", "d"),
        (["demo"], "--console-token", "--token", "token", "t"),
        (["console"], "--model", "--card", "card", "c.json"),
        (["bench", "sim"], "--model", "--card", "card", "c.json"),
        (["evaluate", "m.tflite", "data"], "--split-name", "--split", "split_name", "test"),
    ],
)
def test_old_option_names_still_work_with_a_warning(
    argv: list[str], old: str, new: str, dest: str, value: object, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = build_parser()
    args = parser.parse_args([*argv, old, str(value)])
    assert getattr(args, dest) == value
    assert capsys.readouterr().err == f"sortcam: warning: {old} is now {new}; the old name goes in the next release\n"
    prog = "sortcam " + " ".join(w for w in argv if w in ("sim", "camera", "demo", "console", "bench", "evaluate"))
    help_text = next(p for p in commands(parser) if p.prog == prog).format_help()
    assert new in help_text and not re.search(rf"{re.escape(old)}\b", help_text), f"{old} shows in {prog} --help"


def test_new_names_give_the_same_namespace() -> None:
    parser = build_parser()
    new = parser.parse_args(["demo", "--card", "c.json", "--port", "9090", "--data", "d", "--token", "t"])
    assert (new.card, new.port, new.data, new.token) == ("c.json", 9090, "d", "t")
    assert parser.parse_args(["evaluate", "m", "d", "--split", "all"]).split_name == "all"
    assert parser.parse_args(["evaluate", "m", "d"]).split_name == "val"


# --- the state folder ------------------------------------------------------------------------------


def test_the_state_folder_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from sortcam import state

    monkeypatch.setenv(state.ENV, str(tmp_path / "mine"))
    assert state.state_dir() == tmp_path / "mine"
    monkeypatch.delenv(state.ENV)
    monkeypatch.setattr(state.sys, "platform", "linux")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert state.state_dir() == tmp_path / "xdg" / "sortcam"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/path")  # the spec says: ignore a relative one
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert state.state_dir() == tmp_path / "home" / ".local" / "state" / "sortcam"
    assert state.host_db("line1") == state.state_dir() / "host-line1.db"


def test_the_host_keeps_its_db_in_the_state_folder(_state_dir: Path) -> None:
    from sortcam.host.config import build_config

    cfg = build_config(broker="mqtt://127.0.0.1:1883", serial_url="/dev/null", line="L1")
    assert cfg.state_db == _state_dir / "host-L1.db"


def test_host_events_finds_the_db_of_a_line(
    _state_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sortcam.host.store import StateStore
    from sortcam.state import host_db

    monkeypatch.chdir(tmp_path)
    assert main(["host", "events"]) == 2
    one_line_error(capsys, f"no controller state db in {_state_dir}", "--db FILE")
    StateStore(host_db("L1")).close()
    assert main(["host", "events", "--json"]) == 0  # the only one there
    assert main(["host", "events", "--line", "L1", "--json"]) == 0
    StateStore(host_db("L2")).close()
    capsys.readouterr()
    assert main(["host", "events"]) == 2
    one_line_error(capsys, "2 controller state dbs", "host-L1.db, host-L2.db", "--line LINE")
    assert main(["host", "prune", "--line", "L2", "--older-than-days", "30", "--dry-run"]) == 0
    assert f"{_state_dir / 'host-L2.db'}: would delete 0" in capsys.readouterr().out
    assert main(["host", "events", "--line", "bad/line"]) == 2
    one_line_error(capsys, "--line", "bad line id")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]  # nothing in the working folder

"""How every ``sortcam`` command's ``--help`` reads, and the old option names kept for one release.

:func:`finish` runs once over the whole parser tree after the packages registered their
verbs: every parser gets :class:`HelpFormatter` (each option shows its default; an epilog's
lines stay as written) and ends with examples, the package's own ``epilog`` or else the ones
in :data:`EXAMPLES`. :func:`add_alias` keeps a renamed option working, hidden from ``--help``,
with a one-line warning naming the new spelling.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Iterator, Sequence
from typing import Any, cast

EXAMPLES: dict[str, tuple[str, ...]] = {
    "sortcam": ("sortcam demo", "sortcam host --broker mqtt://broker:1883 --serial /dev/ttyUSB0 --line line1"),
    "sortcam bench": ("sortcam bench model", "sortcam bench host --items 500 --no-record"),
    "sortcam bench model": ("sortcam bench model", "sortcam bench model --card runs/mine/mine.json --out /tmp/b"),
    "sortcam bench host": ("sortcam bench host", "sortcam bench host --items 500 --rate 100 --no-record"),
    "sortcam bench sim": ("sortcam bench sim", "sortcam bench sim --frames 20 --no-record"),
    "sortcam train": (
        "sortcam train photos/ --out runs/mine --weights imagenet",
        "sortcam train photos/ --out runs/mine --distill --teacher EfficientNetB0 --mixup 0.4",
    ),
    "sortcam evaluate": (
        "sortcam evaluate runs/mine/model.keras photos/",
        "sortcam evaluate model/sortcam_trashnet.tflite photos/ --split test",
    ),
    "sortcam quantize": ("sortcam quantize runs/mine/model.keras photos/ --out runs/mine/sortcam_mine.tflite",),
    "sortcam export": ("sortcam export", "sortcam export runs/mine/sortcam_mine.tflite --out firmware/src"),
    "sortcam flash": ("sortcam flash", "sortcam flash -e esp32s3cam --port /dev/ttyUSB0"),
    "sortcam monitor": ("sortcam monitor", "sortcam monitor --port /dev/ttyUSB0 --baud 115200"),
    "sortcam host": (
        "sortcam host --broker mqtt://broker:1883 --serial /dev/ttyUSB0 --line line1",
        "sortcam host --broker mqtts://user:pass@broker:8883 --serial /dev/ttyUSB0 --line line2 --config line2.toml",
    ),
    "sortcam host events": (
        "sortcam host events --line line1 --status missed",
        "sortcam host events --db /var/lib/sortcam/line1.db --system --last 20",
    ),
    "sortcam host prune": ("sortcam host prune --line line1 --older-than-days 30 --dry-run",),
    "sortcam sim": (
        "sortcam sim sorter --link /tmp/sorter",
        "sortcam sim camera --source webcam:0 --broker mqtt://127.0.0.1:1883 --device cam1",
    ),
    "sortcam sim camera": (
        "sortcam sim camera --source sim/samples --broker mqtt://127.0.0.1:1883 --device cam1 --loop",
        "sortcam sim camera --source webcam:0 --broker mqtt://127.0.0.1:1883 --device cam1",
    ),
    "sortcam sim sorter": (
        "sortcam sim sorter --link /tmp/sorter",
        "sortcam sim sorter --fault jam:5:2 --fault bin-full:3",
    ),
    "sortcam demo": ("sortcam demo --items 48 --report demo-report.json", "sortcam demo --console --items 12"),
    "sortcam console": (
        "sortcam console --broker mqtt://broker:1883 --line line1",
        "sortcam console --broker none --data belt-photos",
    ),
    "sortcam console prune": ("sortcam console prune --older-than-days 30 --dry-run",),
}
"""Examples of the commands whose package gives none (``epilog``); each is a command that runs."""


class HelpFormatter(argparse.HelpFormatter):
    """Shows each option's default, and keeps the line breaks of descriptions and epilogs.

    A line of a description or epilog that starts with two spaces (an example command) is
    printed as written; other lines are wrapped. An option's help gets ``(default: X)``
    unless it already names its default, or it has none worth showing (None, a flag, a list).
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out = []
        for line in text.splitlines():
            if not line.strip() or line.startswith("  "):
                out.append(indent + line.rstrip())
            else:
                out.append(
                    textwrap.fill(" ".join(line.split()), width, initial_indent=indent, subsequent_indent=indent)
                )
        return "\n".join(out)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text.lower()
            or text == argparse.SUPPRESS
            or not action.option_strings
            or default is None
            or default is argparse.SUPPRESS
            or isinstance(default, (bool, list))
            or action.nargs == 0
        ):
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


class _Alias(argparse.Action):
    """An old option name: does what the new one does, and warns (one stderr line) that it was renamed."""

    def __init__(self, option_strings: Sequence[str], dest: str, new: argparse.Action, **kwargs: Any) -> None:
        self.new = new
        super().__init__(
            option_strings,
            dest,
            nargs=new.nargs,
            type=cast(Any, new.type),
            choices=new.choices,
            default=argparse.SUPPRESS,
            help=argparse.SUPPRESS,
            metavar=new.metavar,
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        print(
            f"sortcam: warning: {option_string} is now {self.new.option_strings[-1]}; "
            "the old name goes in the next release",
            file=sys.stderr,
        )
        self.new(parser, namespace, values, self.new.option_strings[-1])


def add_alias(parser: argparse.ArgumentParser, new: argparse.Action, *old: str) -> None:
    """Accept ``old`` option names for ``new`` (the action ``add_argument`` returned), hidden from --help."""
    parser.add_argument(*old, action=_Alias, dest=new.dest, new=new)


def _walk(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # aliases map to the same parser once
                yield from _walk(sub)


def finish(parser: argparse.ArgumentParser) -> None:
    """Give every parser in the tree :class:`HelpFormatter` and its examples."""
    for p in _walk(parser):
        p.formatter_class = HelpFormatter
        if p.epilog is None and p.prog in EXAMPLES:
            p.epilog = "examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES[p.prog])


def commands(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every parser of the tree (the top one first), for tests."""
    return list(_walk(parser))

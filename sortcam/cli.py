"""The ``sortcam`` command: a thin dispatcher over the packages' own CLIs.

Each package (``model``, ``host``, ``sim``, ``tools``) adds its verbs through
``register(subparsers)`` and its benchmark targets through ``register_bench``. Module
imports here must stay cheap: TensorFlow is imported only inside the training verbs.
A :class:`SortcamError` is printed as one line on stderr with its exit code.
:mod:`sortcam.cli_help` gives every ``--help`` its defaults and examples.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from sortcam import __version__
from sortcam.cli_help import finish
from sortcam.errors import SortcamError

PACKAGES = (
    "sortcam.model.cli",
    "sortcam.tools.cli",
    "sortcam.tools.device_cli",
    "sortcam.host.cli",
    "sortcam.sim.cli",
    "sortcam.console.cli",
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="sortcam", description="Edge waste sorting: train, export, run and simulate.")
    parser.add_argument("--version", action="version", version=f"sortcam {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    bench = sub.add_parser("bench", help="run a benchmark and record its figures in benchmarks/")
    bench_sub = bench.add_subparsers(dest="bench_target", metavar="TARGET")
    bench_sub.required = True
    for name in PACKAGES:
        module = importlib.import_module(name)
        module.register(sub)
        module.register_bench(bench_sub)
    finish(parser)  # every --help: defaults shown, examples at the end
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args._argv = list(sys.argv[1:] if argv is None else argv)  # what was typed: --resume tells given options apart
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        rc = func(args)
    except SortcamError as exc:
        print(f"sortcam: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("sortcam: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())

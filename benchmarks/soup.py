"""A uniform weight soup of finished students from the same start (behind docs/model.md)

Wortsman et al., "Model soups" (ICML 2022): students trained from the same weights with
different settings often lie in one basin, and the plain mean of their weights can score like
an ensemble at the cost of one model. This averages every weight of the given runs' students
(same architecture, checked), re-estimates BatchNorm on the training batches of the first
run's last epoch (as ``sortcam train --bn-stats train``; the averaged moving statistics mean
nothing), and prints the val accuracy of each member, the soup, and the float ensemble of the
members' probabilities (for reference: it would cost the members' MACs together), with
intervals and the soup's paired counts against the first member.

    python benchmarks/soup.py runs/a runs/b [runs/c ...] --out runs/soup [--json FILE]

``--out`` gets ``model.keras`` with the first run's settings, summary and history beside it,
to quantize as usual (``sortcam quantize runs/soup/model.keras DATA ...``).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bn_stats import last_epoch_plan, load_run, save_beside, score, unfinished, unsafe_output  # noqa: E402
from paired_compare import mcnemar_exact  # noqa: E402

from sortcam.benchinfo import machine  # noqa: E402
from sortcam.errors import SortcamError  # noqa: E402

POOL_KEYS = ("data_dir", "split", "seed", "height", "width", "fit", "views", "augment", "alpha", "init")
"""Settings that must agree: the same photos, views (the shared pool) and start."""


def average_weights(models: list[Any]) -> list[np.ndarray]:
    """The plain mean of each weight over ``models``; raises ValueError when their weights differ in shape."""
    sets = [m.get_weights() for m in models]
    shapes = [[w.shape for w in ws] for ws in sets]
    if any(s != shapes[0] for s in shapes[1:]):
        raise ValueError("the students differ in architecture (weight shapes): a soup needs one")
    return [np.mean(np.stack(ws), axis=0).astype(ws[0].dtype) for ws in zip(*sets, strict=True)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="finished run folders whose students share a start")
    ap.add_argument("--out", type=Path, required=True, help="folder for the soup's model.keras")
    ap.add_argument("--json", type=Path, help="write the figures here, with the machine and date")
    args = ap.parse_args(argv)
    if len(args.runs) < 2:
        print("soup: give at least two runs", file=sys.stderr)
        return 2
    for run in args.runs:
        if problem := unfinished(run):
            print(f"soup: {problem}", file=sys.stderr)
            return 2
    if problem := unsafe_output(args.out, args.runs):
        print(f"soup: --out: {problem}", file=sys.stderr)
        return 2
    configs = [json.loads((run / "train_config.json").read_text()) for run in args.runs]
    for run, c in zip(args.runs[1:], configs[1:], strict=True):
        differ = [k for k in POOL_KEYS if c.get(k) != configs[0].get(k)]
        if differ:
            print(f"soup: {run} saw other photos or views than {args.runs[0]} ({', '.join(differ)} differ): "
                  "a soup needs one start and one view pool", file=sys.stderr)  # fmt: skip
            return 2
    from sortcam.model import consistent as cons
    from sortcam.model.train import _keras

    keras = _keras()
    try:
        d = load_run(args.runs[0])
    except SortcamError as exc:
        print(f"soup: {args.runs[0]}: {exc}", file=sys.stderr)
        return 2
    y = d.val_y
    members = [keras.models.load_model(str(run / "model.keras"), compile=False) for run in args.runs]
    result: dict[str, Any] = {"members": [], "bn_stats_plan": f"{args.runs[0]}, epoch {int(d.saved['epochs'])}"}
    probs = []
    for run, m in zip(args.runs, members, strict=True):
        print(f"soup: member {run}, BatchNorm statistics from its training batches ...", flush=True)
        plan = last_epoch_plan(configs[args.runs.index(run)], len(d.pool))  # the pool is shared (checked above)
        cons.set_bn_stats(m, "train", d.clean_x, d.pool, plan)
        p = np.asarray(m.predict(d.val_x, batch_size=128, verbose=0))
        probs.append(p)
        result["members"].append({"run": str(run), **score(p.argmax(1), y)})
    try:
        mean = average_weights(members)
    except ValueError as exc:
        print(f"soup: {exc}", file=sys.stderr)
        return 2
    soup = members[0]
    soup.set_weights(mean)
    print("soup: BatchNorm statistics of the soup from the first run's training batches ...", flush=True)
    cons.set_bn_stats(soup, "train", d.clean_x, d.pool, d.plan)
    sp = np.asarray(soup.predict(d.val_x, batch_size=128, verbose=0)).argmax(1)
    result["soup"] = score(sp, y, d.classes)
    result["ensemble_of_probabilities"] = score(np.mean(probs, axis=0).argmax(1), y)
    first = probs[0].argmax(1)
    only_first = int(((first == y) & (sp != y)).sum())
    only_soup = int(((sp == y) & (first != y)).sum())
    result.update({"only_first_right": only_first, "only_soup_right": only_soup,
                   "mcnemar_p": round(mcnemar_exact(only_first, only_soup), 4)})  # fmt: skip
    save_beside(args.runs[0], soup, args.out / "model.keras", {**d.saved, "soup_of": [str(r) for r in args.runs]})
    summary = json.loads((args.out / "summary.json").read_text())  # the first member's; say what this model is
    summary.update({"soup_of": [str(r) for r in args.runs], "soup_val": result["soup"]})
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    for m in result["members"]:
        print(f"member {m['run']}: {m['interval']}")
    ens = result["ensemble_of_probabilities"]["interval"]
    print(f"soup: {result['soup']['interval']} (only the first member right {only_first}, only the soup {only_soup}, "
          f"McNemar p = {result['mcnemar_p']}); ensemble of probabilities {ens}")  # fmt: skip
    print(f"wrote {args.out / 'model.keras'}")
    if args.json:
        record = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "machine": machine(), **result}
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A dataset folder whose ``train/`` holds the photos of several splits (symlinks, nothing copied).

Once a recipe is fixed, the shipped model may be fitted on train and val together (docs/model.md,
"Fit on train + val"). ``sortcam train`` takes the folder like any other; it has no ``val/``, so
no per-epoch val figure exists and none is claimed. ``MERGED.json`` in it names the source and
splits; `sortcam quantize` copies it into the card, and `sortcam evaluate` then marks a figure on
those splits as one on photos the model trained on.

    .venv/bin/python scripts/merge_splits.py ../shared/datasets/trashnet runs/trashnet_trainval

Refuses, in one line and before writing anything, a missing split, two photos of one class with
the same file name, and a destination that exists and is not a merge of the same photos.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from sortcam.model.data import IMAGE_SUFFIXES, MANIFEST


def plan(src: Path, splits: list[str]) -> dict[Path, Path]:
    """Destination path (relative, ``train/<class>/<name>``) -> source photo, for every image."""
    links: dict[Path, Path] = {}
    for split in splits:
        root = src / split
        if not root.is_dir():
            raise SystemExit(f"merge_splits: {root} is not a folder")
        for cls in sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")):
            for p in sorted(cls.rglob("*")):
                if not p.is_file() or p.name.startswith(".") or p.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                rel = Path("train") / cls.name / p.name
                if rel in links:
                    raise SystemExit(f"merge_splits: {links[rel]} and {p} would both be {rel}")
                links[rel] = p.resolve()
    if not links:
        raise SystemExit(f"merge_splits: no photos in {', '.join(str(src / s) for s in splits)}")
    return links


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path, help="dataset with split folders (train/ val/ ...)")
    ap.add_argument("dst", type=Path, help="new folder; gets train/<class>/<photo> symlinks")
    ap.add_argument("--splits", default="train,val", help="comma-separated splits to merge (default train,val)")
    args = ap.parse_args()
    links = plan(args.src, [s for s in args.splits.split(",") if s])
    dst: Path = args.dst
    splits = [s for s in args.splits.split(",") if s]
    manifest = {"source": str(args.src), "source_name": args.src.resolve().name, "splits": splits, "photos": len(links)}
    if dst.exists():
        have = {p.relative_to(dst): p.resolve() for p in (dst / "train").rglob("*") if p.is_file()}
        if have == links:
            if not (dst / MANIFEST).is_file():
                (dst / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
            print(f"{dst}: already the merge of {len(links)} photos", flush=True)
            return 0
        raise SystemExit(f"merge_splits: {dst} exists and is not this merge; choose another folder")
    for rel, target in links.items():
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, dst / rel)
    (dst / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    counts: dict[str, int] = {}
    for rel in links:
        counts[rel.parts[1]] = counts.get(rel.parts[1], 0) + 1
    print(f"{dst}: {len(links)} photos ({', '.join(f'{c} {n}' for c, n in sorted(counts.items()))})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

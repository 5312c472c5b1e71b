"""The retrain worker: ``python -m sortcam.console.worker JOB_DIR`` (started by the console).

Reads ``JOB_DIR/job.json``, stages the dataset, trains (through ``sortcam.model``),
quantizes to full int8, writes a candidate model and card under ``JOB_DIR/candidate/``,
evaluates candidate and current model in the TFLM runtime on the same validation
images, and writes ``JOB_DIR/result.json``. Progress goes to ``progress.json`` and, as
lines, to stdout (the console tails it). Exit code 0 on success, 1 on a
:class:`SortcamError` (its message is in ``result.json``), 2 on a bug.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from sortcam.errors import DependencyError, ModelError, SortcamError


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


def run(job_dir: Path) -> dict[str, Any]:
    from sortcam.card import load_card, sha256_file
    from sortcam.console import modelops
    from sortcam.console.retrain import RetrainSettings, evaluate_int8, plan_dataset, stage_dataset
    from sortcam.runtime import Int8Classifier

    job = json.loads((job_dir / "job.json").read_text())
    t0 = time.time()

    def progress(stage: str, percent: int) -> None:
        _write(job_dir / "progress.json", {"stage": stage, "percent": percent, "elapsed_s": round(time.time() - t0, 1)})
        print(f"== {stage} ({percent}%)", flush=True)

    mode = job["mode"]
    card = load_card(job["card"])
    classes = list(card.classes)
    known = RetrainSettings.__dataclass_fields__
    settings = RetrainSettings(**{k: v for k, v in job["settings"].items() if k in known})
    for key in ("old_data", "val_data"):
        if getattr(settings, key) is not None:
            setattr(settings, key, Path(getattr(settings, key)))
    reason = modelops.training_available()
    if reason is not None:
        raise DependencyError(reason)
    progress("staging data", 2)
    plan = plan_dataset(mode, classes, Path(job["labelled"]), settings)
    data = job_dir / "data"
    stage_dataset(plan, data)
    print(f"train {plan.counts()['train']} val {plan.counts()['val']} (val: {plan.val_source})", flush=True)
    h, w, fit, rng = card.input.height, card.input.width, card.preprocess.fit, card.preprocess.range
    run_dir = job_dir / "run"
    progress("training", 10)
    if mode == "finetune":
        float_model = card.model_path.with_suffix(".keras")
        if "float_model" in card.extra:
            float_model = (card.path.parent if card.path else Path(".")) / str(card.extra["float_model"])
        if not float_model.is_file():
            raise ModelError(
                f"fine-tune needs the current model's float weights, {float_model} is missing; "
                "use mode 'scratch' or 'oldnew' (a promoted console model keeps its .keras)"
            )
        keras_path = modelops.fine_tune_model(
            float_model,
            data,
            run_dir,
            classes,
            height=h,
            width=w,
            fit=fit,
            value_range=rng,
            epochs=settings.epochs,
            lr=settings.finetune_lr,
            batch_size=settings.batch_size,
            seed=settings.seed,
        )
    else:
        keras_path = modelops.train_model(
            data,
            run_dir,
            height=h,
            width=w,
            fit=fit,
            alpha=settings.alpha,
            weights=settings.weights,
            epochs=settings.epochs,
            fine_tune_epochs=settings.fine_tune_epochs,
            batch_size=settings.batch_size,
            seed=settings.seed,
        )
    classes_file = run_dir / "classes.json"
    cand_classes = json.loads(classes_file.read_text()) if classes_file.is_file() else classes
    progress("quantizing to int8", 75)
    cand_dir = job_dir / "candidate"
    cand_dir.mkdir(exist_ok=True)
    tflite = modelops.quantize_candidate(
        keras_path, data, cand_dir / "candidate.tflite", fit=fit, value_range=rng, seed=settings.seed
    )
    shutil.copyfile(keras_path, cand_dir / "candidate.keras")
    clf = Int8Classifier(tflite)
    if clf.num_classes != len(cand_classes):
        raise ModelError(f"the quantized model has {clf.num_classes} outputs for {len(cand_classes)} classes")
    import numpy as np

    clf.invoke_int8(np.zeros(clf.input_shape, dtype=np.int8))
    arena = clf.arena_used_bytes()
    progress("evaluating candidate and current model", 85)
    cand_card = load_card(job["card"])
    if tflite.with_suffix(".json").is_file():  # the pipeline's card: ops, MACs, measured arena
        produced = load_card(tflite.with_suffix(".json"))
        cand_card.macs = produced.macs
        cand_card.extra.update({k: v for k, v in produced.extra.items() if k in ("ops", "arena_measured_bytes")})
        arena = max(arena, produced.arena_bytes)
    cand_card.tflite = tflite.name
    cand_card.classes = list(cand_classes)
    cand_card.sha256 = sha256_file(tflite)
    cand_card.flash_bytes = tflite.stat().st_size
    cand_card.arena_bytes = arena
    cand_card.bins = {c: card.bins.get(c, "reject") for c in cand_classes}
    cand_card.biodegradable = {c: card.biodegradable.get(c, False) for c in cand_classes}
    cand_card.path = cand_dir / "candidate.json"
    m_cand = evaluate_int8(tflite, cand_card, data / "val")
    m_cur = evaluate_int8(card.model_path, card, data / "val")
    cand_card.metrics = {"int8": {**m_cand, "data": plan.val_source}}
    cand_card.extra.update({"trained_by": f"sortcam console retrain ({mode})", "train_counts": plan.counts()["train"]})
    cand_card.extra.pop("promoted", None)
    cand_card.save(cand_dir / "candidate.json")
    return {
        "ok": True,
        "mode": mode,
        "candidate_card": str(cand_dir / "candidate.json"),
        "candidate_model": cand_card.model_id,
        "current_model": card.model_id,
        "metrics": {"candidate": m_cand, "current": m_cur},
        "val_source": plan.val_source,
        "counts": plan.counts(),
        "flash_bytes": cand_card.flash_bytes,
        "arena_bytes": arena,
        "elapsed_s": round(time.time() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m sortcam.console.worker JOB_DIR", file=sys.stderr)
        return 2
    job_dir = Path(args[0])
    try:
        result = run(job_dir)
        rc = 0
    except SortcamError as exc:
        result, rc = {"ok": False, "error": str(exc)}, 1
        print(f"retrain failed: {exc}", flush=True)
    except Exception as exc:  # a bug: keep the traceback in the log, a one-line reason on the page
        traceback.print_exc()
        result, rc = {"ok": False, "error": f"internal error in the retrain worker: {type(exc).__name__}: {exc}"}, 2
    _write(job_dir / "result.json", result)
    print("== done" if rc == 0 else "== failed", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())

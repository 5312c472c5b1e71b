"""Retraining from the labelling queue, as a background job, and promotion.

A job runs in its own process (``python -m sortcam.console.worker JOB_DIR``) so that
TensorFlow never loads into the console, a crash cannot take the console down, and its
memory is returned when it ends. The console and the worker talk through files in the
job folder: ``job.json`` (what to do), ``log.txt`` (the worker's output, tailed for
progress), ``progress.json`` and finally ``result.json``.

Modes (what users ask for):

* ``scratch``: a fresh network (backbone weights per the console's setting) trained on
  the labelled data only;
* ``finetune``: the current model's float weights (``<name>.keras`` beside the card)
  trained further on the labelled data at a low learning rate;
* ``oldnew``: a fresh network trained on the old training data plus the labelled data.

Both the candidate and the current model are then evaluated, int8 in the TFLM runtime,
on the same validation images, and shown side by side. Nothing is promoted until an
operator says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sortcam.card import ModelCard, load_card
from sortcam.errors import BusyError, DataError, ModelError, UsageError
from sortcam.preprocess import IMAGE_SUFFIXES, fit_resize, load_image, to_int8
from sortcam.runtime import Int8Classifier

MODES: dict[str, str] = {
    "scratch": "from scratch on the labelled data",
    "finetune": "fine-tune the current model on the labelled data",
    "oldnew": "from scratch on the old training data plus the labelled data",
}


@dataclass
class RetrainSettings:
    """How retraining is run; set from ``sortcam console`` options."""

    old_data: Path | None = None
    """Folder-per-class training data of the current model (``train/ val/`` inside, or flat)."""
    val_data: Path | None = None
    """Folder-per-class validation images for the side-by-side comparison."""
    min_per_class: int = 5
    weights: str = "imagenet"
    alpha: float = 0.35
    epochs: int = 10
    fine_tune_epochs: int = 5
    batch_size: int = 32
    seed: int = 1337
    finetune_lr: float = 1e-4
    holdout: float = 0.2
    """Share of each class's labelled images kept for validation when no val data exists."""


# --- datasets -------------------------------------------------------------------------


def class_images(folder: Path, classes: list[str]) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {c: [] for c in classes}
    for c in classes:
        d = folder / c
        if d.is_dir():
            out[c] = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    return out


def _is_holdout(path: Path, share: float) -> bool:
    h = int(hashlib.sha256(path.name.encode()).hexdigest()[:8], 16)
    return (h % 1000) < share * 1000


@dataclass
class DatasetPlan:
    train: dict[str, list[Path]]
    val: dict[str, list[Path]]
    val_source: str

    def counts(self) -> dict[str, dict[str, int]]:
        return {"train": {c: len(v) for c, v in self.train.items()}, "val": {c: len(v) for c, v in self.val.items()}}


def plan_dataset(mode: str, classes: list[str], labelled: Path, settings: RetrainSettings) -> DatasetPlan:
    """Choose train and val images for ``mode``; raises :class:`DataError` when a class has too few."""
    if mode not in MODES:
        raise UsageError(f"unknown retrain mode {mode!r}: expected one of {', '.join(MODES)}")
    new = class_images(labelled, classes)
    old_train: dict[str, list[Path]] = {c: [] for c in classes}
    old_val: dict[str, list[Path]] | None = None
    if settings.old_data is not None:
        root = Path(settings.old_data)
        if not root.is_dir():
            raise DataError(f"old training data not found: {root}")
        if (root / "train").is_dir():
            old_train = class_images(root / "train", classes)
            if (root / "val").is_dir():
                old_val = class_images(root / "val", classes)
        else:
            old_train = class_images(root, classes)
    if mode == "oldnew" and settings.old_data is None:
        raise UsageError("mode 'oldnew' needs the old training data: start the console with --train-data DIR")
    if settings.val_data is not None:
        val = class_images(Path(settings.val_data), classes)
        source = str(settings.val_data)
        new_train = new
    elif old_val is not None and any(old_val.values()):
        val, source, new_train = old_val, f"{settings.old_data}/val", new
    else:
        val = {c: [p for p in new[c] if _is_holdout(p, settings.holdout)] for c in classes}
        for c in classes:  # a class with two or more images keeps one for val and one for training
            if len(new[c]) < 2:
                val[c] = []
            elif not val[c]:
                val[c] = [new[c][-1]]
            elif len(val[c]) == len(new[c]):
                val[c] = val[c][1:]
        new_train = {c: [p for p in new[c] if p not in val[c]] for c in classes}
        source = f"{int(settings.holdout * 100)}% of the labelled images (held out)"
    train = {c: list(new_train[c]) + (old_train[c] if mode == "oldnew" else []) for c in classes}
    short = [f"{c} {len(train[c])}" for c in classes if len(train[c]) < settings.min_per_class]
    if short:
        raise DataError(
            f"too few images per class to retrain (need at least {settings.min_per_class} per class for training): "
            + ", ".join(short)
            + "; label more items first"
        )
    no_val = [c for c in classes if not val[c]]
    if no_val:
        raise DataError(f"no validation images for: {', '.join(no_val)}; label more items or pass --val-data")
    return DatasetPlan(train, val, source)


def stage_dataset(plan: DatasetPlan, dest: Path) -> None:
    """Lay the plan out as ``dest/train/<class>/`` and ``dest/val/<class>/`` (symlinks to the images)."""
    for split, groups in (("train", plan.train), ("val", plan.val)):
        for c, paths in groups.items():
            d = dest / split / c
            d.mkdir(parents=True, exist_ok=True)
            for i, p in enumerate(paths):
                link = d / f"{i:05d}_{p.name}"
                os.symlink(p.resolve(), link)


# --- evaluation (int8 in TFLM, no TensorFlow) ---------------------------------------------


def evaluate_int8(tflite: Path, card: ModelCard, val_dir: Path) -> dict[str, Any]:
    """Accuracy, macro F1 and per-class recall of an int8 model on ``val_dir/<class>/`` images.

    Classes are matched by name, so models with different output orders compare fairly.
    """
    clf = Int8Classifier(tflite)
    h, w = card.input.height, card.input.width
    lut_scale, lut_zp = clf.input_quant.scale, clf.input_quant.zero_point
    y_true: list[int] = []
    y_pred: list[int] = []
    classes = card.classes
    for d in sorted(p for p in val_dir.iterdir() if p.is_dir()):
        if d.name not in classes:
            continue
        truth = classes.index(d.name)
        for f in sorted(d.iterdir()):
            try:
                img = load_image(f)
            except DataError:
                continue
            x = to_int8(fit_resize(img, h, w, card.preprocess.fit), lut_scale, lut_zp, card.preprocess.range)
            q = clf.invoke_int8(x)
            y_true.append(truth)
            y_pred.append(int(np.argmax(q)))
    n = len(y_true)
    if n == 0:
        raise DataError(f"no readable validation images under {val_dir}")
    t, p = np.array(y_true), np.array(y_pred)
    recall, f1 = {}, []
    for i, c in enumerate(classes):
        tp = int(((p == i) & (t == i)).sum())
        support = int((t == i).sum())
        predicted = int((p == i).sum())
        if support:
            recall[c] = round(tp / support, 4)
        prec = tp / predicted if predicted else 0.0
        rec = tp / support if support else 0.0
        if support:
            f1.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    return {
        "images": n,
        "accuracy": round(float((t == p).mean()), 4),
        "macro_f1": round(float(np.mean(f1)) if f1 else 0.0, 4),
        "recall": recall,
    }


# --- jobs ----------------------------------------------------------------------------------


@dataclass
class Job:
    id: str
    mode: str
    dir: Path
    started: float
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def read(self, name: str) -> dict[str, Any] | None:
        try:
            return json.loads((self.dir / name).read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return None

    def log_tail(self, lines: int = 12) -> list[str]:
        try:
            text = (self.dir / "log.txt").read_text(errors="replace")
        except OSError:
            return []
        return [ln for ln in text.splitlines() if ln.strip()][-lines:]

    def state(self) -> dict[str, Any]:
        result = self.read("result.json")
        progress = self.read("progress.json") or {"stage": "starting", "percent": 0}
        running = self.proc is not None and self.proc.poll() is None
        if result is not None:
            status = "done" if result.get("ok") else "failed"
        elif running:
            status = "running"
        else:
            status = "failed"
            rc = self.proc.returncode if self.proc is not None else None
            result = {"ok": False, "error": f"the retrain worker ended without a result (exit code {rc}); see its log"}
        log = self.log_tail(40)
        percent = int(progress.get("percent", 0))
        if status == "running" and progress.get("stage") == "training":
            percent = _training_percent(log, percent)
        return {
            "id": self.id,
            "mode": self.mode,
            "status": status,
            "stage": progress.get("stage"),
            "percent": 100 if status == "done" else percent,
            "started": self.started,
            "result": result,
            "log": log[-12:],
        }


EPOCH_RE = re.compile(r"^\[([\w-]+)\] epoch (\d+)/(\d+)")
TRAIN_SPAN = (10, 75)
"""Percent of the job at the start and the end of training (staging before, quantizing after)."""


def _training_percent(log: list[str], floor: int) -> int:
    """Interpolate the training span from the last ``[phase] epoch k/N`` line of the worker's log."""
    for line in reversed(log):
        m = EPOCH_RE.match(line)
        if m:
            done, total = int(m.group(2)), max(1, int(m.group(3)))
            lo, hi = TRAIN_SPAN
            return max(floor, lo + (hi - lo) * done // total)
    return floor


class JobManager:
    """At most one retrain at a time; keeps finished jobs for comparison and promotion."""

    def __init__(self, jobs_dir: Path) -> None:
        self.jobs_dir = Path(jobs_dir)
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.jobs: dict[str, Job] = {}
        self.current: Job | None = None

    def running(self) -> Job | None:
        job = self.current
        if job is not None and job.proc is not None and job.proc.poll() is None:
            return job
        return None

    def start(self, mode: str, spec: dict[str, Any]) -> Job:
        with self._lock:
            busy = self.running()
            if busy is not None:
                st = busy.state()
                raise BusyError(
                    f"a retrain is already running (job {busy.id}, {st['stage']}, {st['percent']}%); "
                    "wait for it to finish"
                )
            job_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:4]
            job_dir = self.jobs_dir / job_id
            job_dir.mkdir(parents=True)
            (job_dir / "job.json").write_text(json.dumps({"mode": mode, **spec}, indent=2, default=str))
            log = open(job_dir / "log.txt", "wb")  # noqa: SIM115 - handed to the child, closed below
            env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "sortcam.console.worker", str(job_dir)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
            finally:
                log.close()
            job = Job(job_id, mode, job_dir, time.time(), proc)
            self.jobs[job_id] = job
            self.current = job
            return job

    def get(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise UsageError(f"no retrain job {job_id!r}")
        return job

    def stop_all(self) -> None:
        for job in self.jobs.values():
            if job.proc is not None and job.proc.poll() is None:
                job.proc.terminate()
                try:
                    job.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    job.proc.kill()


# --- promotion -------------------------------------------------------------------------------


def check_bin_map(candidate: ModelCard, bins: dict[str, str]) -> None:
    """The candidate's classes must be exactly the line's bin-map labels."""
    have, want = set(candidate.classes), set(bins)
    if have != want:
        extra, missing = sorted(have - want), sorted(want - have)
        parts = []
        if extra:
            parts.append(f"classes not in the line's bin map: {', '.join(extra)}")
        if missing:
            parts.append(f"bin-map labels the model lacks: {', '.join(missing)}")
        detail = "; ".join(parts)
        raise ModelError(f"cannot promote: the model's classes differ from the line's bin map ({detail})")


@dataclass
class Promotion:
    card_path: Path
    sha256: str
    firmware_files: list[str]
    archived: str | None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["card_path"] = str(self.card_path)
        return d


JOURNAL = ".promote-journal.json"


def promote(candidate_card: Path, current_card: Path, firmware_dir: Path | None, bins: dict[str, str]) -> Promotion:
    """Install a candidate as the line's model: ``.tflite`` + card (+ ``.keras``) and the firmware sources.

    Everything is first written and checked in temp folders beside the targets (same
    file system, so renames are atomic). Then a journal listing the renames is written
    atomically, the files are renamed into place (the card last), and the journal is
    removed. A crash before the journal leaves the old model untouched; a crash after it
    is rolled forward by :func:`recover` when the console next starts, so the promoted
    model appears completely or not at all. The previous model is archived under
    ``<model dir>/history/<old model id>/``.
    """
    from sortcam.card import sha256_file
    from sortcam.console.modelops import export_c_sources

    cand = load_card(candidate_card)
    check_bin_map(cand, bins)
    cur_card_path = Path(current_card).resolve()
    model_dir = cur_card_path.parent
    recover(model_dir)
    name = cur_card_path.stem
    sha = sha256_file(cand.model_path)
    Int8Classifier(cand.model_path)  # it must load in TFLM before anything moves
    stage = Path(_mkdtemp(model_dir, ".promote-"))
    fw_stage: Path | None = None
    committed = False
    try:
        tflite_name = f"{name}.tflite"
        shutil.copyfile(cand.model_path, stage / tflite_name)
        keras_src = cand.model_path.with_suffix(".keras")
        if keras_src.is_file():
            shutil.copyfile(keras_src, stage / f"{name}.keras")
        cand.tflite = tflite_name
        cand.sha256 = sha
        cand.bins = {c: bins[c] for c in cand.classes}
        cand.extra["promoted"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        cand.save(stage / f"{name}.json")
        moves: list[tuple[Path, Path]] = [(stage / tflite_name, model_dir / tflite_name)]
        if (stage / f"{name}.keras").is_file():
            moves.append((stage / f"{name}.keras", model_dir / f"{name}.keras"))
        if firmware_dir is not None:
            firmware_dir = Path(firmware_dir).resolve()
            firmware_dir.mkdir(parents=True, exist_ok=True)
            fw_stage = Path(_mkdtemp(firmware_dir, ".promote-"))
            export_c_sources(stage / tflite_name, stage / f"{name}.json", fw_stage)
            files = sorted(f for f in fw_stage.iterdir() if f.is_file())
            if not files:
                raise ModelError("the C exporter wrote no files")
            moves += [(f, firmware_dir / f.name) for f in files]
        moves.append((stage / f"{name}.json", cur_card_path))  # the card last
        archived = _archive(cur_card_path)
        journal = {
            "moves": [[str(a), str(b)] for a, b in moves],
            "cleanup": [str(stage)] + ([str(fw_stage)] if fw_stage else []),
        }
        tmp = model_dir / (JOURNAL + ".tmp")
        tmp.write_text(json.dumps(journal))
        os.replace(tmp, model_dir / JOURNAL)
        committed = True
        recover(model_dir)
    except OSError as exc:
        if committed:
            raise ModelError(f"promotion interrupted ({exc}); it completes when the console restarts") from None
        raise ModelError(f"promotion failed, the current model is unchanged: {exc}") from None
    finally:
        if not committed:
            shutil.rmtree(stage, ignore_errors=True)
            if fw_stage is not None:
                shutil.rmtree(fw_stage, ignore_errors=True)
    written = [str(b) for a, b in moves if firmware_dir is not None and b.parent == firmware_dir]
    return Promotion(cur_card_path, sha, written, archived)


def recover(model_dir: Path) -> bool:
    """Finish a promotion whose journal is present (roll forward); ``True`` if there was one."""
    path = Path(model_dir) / JOURNAL
    if not path.is_file():
        return False
    journal = json.loads(path.read_text())
    for src, dst in journal["moves"]:
        if Path(src).exists():
            os.replace(src, dst)
    path.unlink()
    for d in journal.get("cleanup", []):
        shutil.rmtree(d, ignore_errors=True)
    return True


def _archive(card_path: Path) -> str | None:
    """Copy the current card and model to ``history/<model id>/``; ``None`` when there is none."""
    if not card_path.is_file():
        return None
    try:
        old = load_card(card_path)
    except ModelError:
        return None
    hist = card_path.parent / "history" / (old.model_id or "unknown")
    hist.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(card_path, hist / card_path.name)
    if old.model_path.is_file():
        shutil.copyfile(old.model_path, hist / old.model_path.name)
    return str(hist)


def _mkdtemp(parent: Path, prefix: str) -> str:
    import tempfile

    return tempfile.mkdtemp(prefix=prefix, dir=parent)

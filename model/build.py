"""`sortcam build`: from a folder of photos to firmware sources (and a flashed camera) in one command.

The stages, each one the existing command's own code (no second copy of any step):

1. **check** the data: classes, enough train photos per class, every class in the held-out split;
2. **teacher** (``--recipe shipped`` only): `sortcam teacher`, a fine-tuned backbone on the
   student's input (84x84 scaled up to 160), and (unless ``--refine-epochs 0``) a second one on
   full-size photos (``--refine-teacher-size``, 256x256, ``--refine-teacher-epochs``, 15) for the
   refinement;
3. **train**: ``shipped`` is the recipe of the shipped model: consistent distillation from the
   first teacher, MobileNetV2 0.35 started by weight selection from MobileNetV2 1.0; then
   (``--refine-epochs N``, 25 by default, 0 to skip) the same student is continued for N epochs
   with the full-size teacher shown the same mixed views at its input size (its BatchNorm statistics
   from the training batches, ``--bn-stats train``); ``quick`` is plain transfer
   learning from ImageNet weights (needs internet, or ``--weights FILE``);
4. **quantize** to full int8 (TFLM check, arena measured, card written; the shipped recipe with
   layer-wise bias correction, ``sortcam quantize --bias-correct``);
5. **budget**: flash and arena against the target, with the overshoot and a smaller alpha or input
   size that would fit;
6. **evaluate** float and int8 on the held-out split (``test`` when the data has one, else ``val``),
   with ``report.html``;
7. **export** into the firmware sources (only once everything above passed: nothing half-written);
8. **flash** (``--flash``): the PlatformIO upload for ``--target``.

``OUT/build.json`` records each finished stage; run the same command again on the same ``--out``
and it continues where it stopped (inside the shipped recipe's training, at the last epoch).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sortcam import strict_json
from sortcam.errors import DataError, UsageError
from sortcam.stats import format_interval
from sortcam.targets import TARGETS, Target

RECIPES = ("quick", "shipped")
STAGES = ("check", "teacher", "train", "quantize", "budget", "evaluate", "export", "flash")
MIN_PER_CLASS = 10


@dataclass
class BuildConfig:
    data_dir: str
    out_dir: str
    target: str = "esp32cam"
    recipe: str = "shipped"
    flash: bool = False
    port: str | None = None
    firmware_dir: str | None = None
    """Where the model sources go (default: the checkout's firmware/src)."""
    weights: str = "imagenet"
    """The quick recipe's MobileNetV2 weights: imagenet, a backbone file, or none."""
    teacher_backbone: str = "EfficientNetB0"
    init_select: str = "imagenet"
    """The shipped recipe's student start: weight selection from MobileNetV2 1.0 (``imagenet``,
    a backbone weights file), or ``none`` for random weights."""
    alpha: float = 0.35
    size: int = 0
    """Student input size (0: the recipe's, 84 shipped or 96 quick)."""
    epochs: int = 0
    """Student epochs (0: the recipe's)."""
    teacher_epochs: int = 8
    refine_epochs: int = 25
    """Epochs of the refinement with the full-size teacher after the shipped recipe's first student
    (0: none, the shipped model before 2026-12-02 evening)."""
    refine_teacher_size: int = 256
    """Input of the full-size teacher (192 before 2026-12-06)."""
    refine_teacher_epochs: int = 15
    """Fine-tuning epochs of the full-size teacher (8 before 2026-12-06; ``teacher_epochs`` is the first teacher's)."""
    min_per_class: int = MIN_PER_CLASS
    seed: int = 1337

    def validate(self) -> None:
        if self.recipe not in RECIPES:
            raise UsageError(f"--recipe must be one of {', '.join(RECIPES)}")
        if self.target not in TARGETS:
            raise UsageError(f"--target must be one of {', '.join(TARGETS)}")
        if self.min_per_class < 2:
            raise UsageError("--min-per-class must be >= 2")
        if self.refine_epochs < 0:
            raise UsageError("--refine-epochs must be >= 0")
        # Checked here, not when the second teacher starts, which is after the first student's run.
        if self.teacher_epochs < 1 or self.refine_teacher_epochs < 1:
            raise UsageError("--teacher-epochs and --refine-teacher-epochs must be >= 1")
        if not 32 <= self.refine_teacher_size <= 512:
            raise UsageError(f"--refine-teacher-size {self.refine_teacher_size} outside 32..512")

    @property
    def student_size(self) -> int:
        return self.size or (84 if self.recipe == "shipped" else 96)

    def identity(self) -> dict[str, Any]:
        """What makes two builds the same build (a rerun must match it to continue)."""
        d = asdict(self)
        for k in ("flash", "port", "firmware_dir", "out_dir"):
            d.pop(k)
        if not _refines(self):  # so a build folder written before the option existed still continues
            d.pop("refine_epochs")
            d.pop("refine_teacher_size")
            d.pop("refine_teacher_epochs")
        d["data_dir"] = str(Path(self.data_dir).resolve())
        return d


class _State:
    def __init__(self, config: BuildConfig) -> None:
        self.out = Path(config.out_dir)
        self.path = self.out / "build.json"
        self.data: dict[str, Any] = {"build": config.identity(), "stages": {}}
        if self.path.is_file():
            try:
                old = json.loads(self.path.read_text())
            except (OSError, ValueError):
                raise DataError(f"{self.path} is unreadable: remove it or use another --out") from None
            if old.get("build") != config.identity():
                theirs, ours = old.get("build", {}), config.identity()
                k = next((k for k in sorted(set(theirs) | set(ours)) if theirs.get(k) != ours.get(k)), "?")
                raise UsageError(
                    f"--out {self.out} holds another build ({k} = {theirs.get(k)!r} there, {ours.get(k)!r} here); "
                    "use another --out"
                )
            self.data = old

    def done(self, stage: str) -> dict[str, Any] | None:
        return self.data["stages"].get(stage)

    def finish(self, stage: str, result: dict[str, Any]) -> None:
        self.data["stages"][stage] = {**result, "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=2))
        tmp.replace(self.path)


def _banner(i: int, stage: str, what: str) -> None:
    print(f"== build {i}/{len(STAGES)}: {stage}: {what}", flush=True)


def check_data(config: BuildConfig) -> dict[str, Any]:
    """Classes and counts; one-line errors for too few photos or a class missing from the held-out split."""
    from sortcam.model.data import index_dataset

    index = index_dataset(config.data_dir, seed=config.seed)
    train, val = index.split("train"), index.split("val")
    counts = train.counts(len(index.classes))
    few = [f"{c} ({n})" for c, n in zip(index.classes, counts, strict=True) if n < config.min_per_class]
    if few:
        raise DataError(
            f"too few train photos (need {config.min_per_class} per class): {', '.join(few)}; "
            "collect more (sortcam collect) or lower --min-per-class"
        )
    held = "test" if len(index.split("test")) and index.from_folders else "val"
    held_counts = index.split(held).counts(len(index.classes))
    val_counts = val.counts(len(index.classes))
    for name, cnt in (("val", val_counts), (held, held_counts)):
        missing = [c for c, n in zip(index.classes, cnt, strict=True) if n == 0]
        if missing:
            raise DataError(f"class(es) missing from the {name} split: {', '.join(missing)}")
    return {"classes": index.classes, "train": counts, "val": val_counts, "held_out": held}


def _student_out(out: Path) -> Path:
    return out / "student"


def _refine_out(out: Path) -> Path:
    return out / "refine"


def _refines(config: BuildConfig) -> bool:
    return config.recipe == "shipped" and config.refine_epochs > 0


def run_teacher(config: BuildConfig, out: Path) -> dict[str, Any]:
    """The shipped recipe's teachers: on the student's input, then (for the refinement) on full-size photos."""
    from sortcam.model.teacher import TeacherConfig, is_teacher_file, train_teacher

    wanted = [("teacher", config.student_size, 160, config.teacher_epochs)]
    if _refines(config):
        wanted.append(("teacher_full", 0, config.refine_teacher_size, config.refine_teacher_epochs))
    result: dict[str, Any] = {}
    for name, via, size, epochs in wanted:
        folder = out / name
        # A teacher finished before a stop is kept (build.json fixes its settings): only the other trains again.
        if is_teacher_file(folder / "teacher.keras"):
            meta = json.loads((folder / "teacher.json").read_text())
            print(f"teacher: {folder / 'teacher.keras'} finished earlier, kept", flush=True)
        else:
            meta = train_teacher(
                TeacherConfig(
                    data_dir=config.data_dir,
                    out_dir=str(folder),
                    backbone=config.teacher_backbone,
                    via=via,
                    size=size,
                    epochs=epochs,
                    seed=config.seed,
                )
            )
        result[name] = {"teacher": str(folder / "teacher.keras"), "val": meta.get("val")}
    return {"teacher": result["teacher"]["teacher"], "val": result["teacher"]["val"], "teachers": result}


def train_config(config: BuildConfig, out: Path) -> Any:
    """The TrainConfig of the recipe (``shipped``: docs/model.md, "Reproduce the shipped model")."""
    from sortcam.model.train import TrainConfig

    size = config.student_size
    common = {
        "data_dir": config.data_dir,
        "out_dir": str(_student_out(out)),
        "alpha": config.alpha,
        "height": size,
        "width": size,
        "seed": config.seed,
    }
    if config.recipe == "shipped":
        return TrainConfig(
            **common,
            fit="stretch",
            weights="none",
            epochs=config.epochs or 40,
            fine_tune_epochs=0,
            select="last",
            distill=True,
            teacher=str(out / "teacher" / "teacher.keras"),
            views=8,
            temperature=4.0,
            distill_alpha=0.7,
            weight_decay=0.01,
            batch_size=64,
            mixup=0.4,
            lr=2e-3,
            init_select=None if config.init_select.lower() == "none" else config.init_select,
        )
    return TrainConfig(
        **common,
        fit="crop",
        weights=config.weights,
        epochs=config.epochs or 10,
        fine_tune_epochs=5 if config.weights.lower() != "none" else 0,
        select="last",
    )


def refine_config(config: BuildConfig, out: Path) -> Any:
    """The shipped recipe's refinement: the student continued (``--init``) from the full-size teacher."""
    from dataclasses import replace

    base = train_config(config, out)
    return replace(
        base,
        out_dir=str(_refine_out(out)),
        teacher=str(out / "teacher_full" / "teacher.keras"),
        epochs=config.refine_epochs,
        lr=1e-3,
        init=str(_student_out(out) / "model.keras"),
        init_select=None,
        bn_stats="train",  # measured on four refinements (docs/model.md, "BatchNorm statistics")
    )


def _run_or_continue(tc: Any) -> dict[str, Any]:
    """Train ``tc``, continuing its run folder after the last finished epoch; a finished run is kept."""
    from sortcam.model.consistent import read_state_meta
    from sortcam.model.train import train

    run = Path(tc.out_dir)
    if (run / "resume" / "state.json").is_file():
        meta = read_state_meta(run)
        if int(meta["epoch"]) >= tc.epochs and (run / "summary.json").is_file():
            print(f"train: {run} finished earlier ({meta['epoch']} epochs), kept", flush=True)
            return dict(json.loads((run / "summary.json").read_text()))
        print(f"train: continuing {run} after epoch {meta['epoch']}", flush=True)
        begun = meta.get("recipe", {}).get("bn_stats", "clean")  # a run saved before the option: clean
        if begun != tc.bn_stats:
            print(f"train: {run} was begun with --bn-stats {begun}: it continues so", flush=True)
            tc.bn_stats = begun
        tc.resume = str(run)
    return dict(train(tc))


def run_train(config: BuildConfig, out: Path) -> dict[str, Any]:
    summary = _run_or_continue(train_config(config, out))
    run = _student_out(out)
    result = {"model": str(run / "model.keras"), "epochs": summary.get("epochs_done"), "best": summary.get("best")}
    if _refines(config):
        print(f"train: refinement, {config.refine_epochs} epochs with the full-size teacher", flush=True)
        refined = _run_or_continue(refine_config(config, out))
        result.update(
            {
                "model": str(_refine_out(out) / "model.keras"),
                "student": str(run / "model.keras"),
                "refine_epochs": refined.get("epochs_done"),
                "best": refined.get("best"),
            }
        )
    return result


def _fits(card: Any, target: Target) -> list[str]:
    over = []
    if card.flash_bytes > target.flash_bytes:
        over.append(
            f"flash {card.flash_bytes:,} B is {card.flash_bytes - target.flash_bytes:,} B over {target.flash_bytes:,} B"
        )
    if card.arena_bytes > target.arena_bytes:
        over.append(
            f"arena {card.arena_bytes:,} B is {card.arena_bytes - target.arena_bytes:,} B over {target.arena_bytes:,} B"
        )
    return over


def suggest_smaller(card: Any, alpha: float, size: int, target: Target) -> str:
    """A smaller alpha or input size that would fit, by scaling this model's own figures.

    Weights (flash) grow with about alpha squared and not with the input; the arena with alpha
    and the input's area. Estimates, so the suggestion keeps a 10% margin.
    """
    from sortcam.model.train import ALPHAS

    best: tuple[float, int, float] | None = None
    for a in ALPHAS:
        for s in (size, 96, 84, 64, 48):
            if a > alpha or s > size:
                continue
            flash = card.flash_bytes * (a / alpha) ** 2
            arena = card.arena_bytes * (a / alpha) * (s / size) ** 2
            if flash <= 0.9 * target.flash_bytes and arena <= 0.9 * target.arena_bytes:
                score = a * a * s * s
                if best is None or score > best[2]:
                    best = (a, s, score)
    if best is None:
        return "no MobileNetV2 alpha >= 0.35 fits; try a smaller input than 48"
    return f"--alpha {best[0]} --size {best[1]} would fit (estimated)"


def build(config: BuildConfig) -> dict[str, Any]:
    """Run (or continue) every stage; returns the summary (also ``OUT/summary.json``)."""
    from sortcam.card import load_card

    config.validate()
    target = TARGETS[config.target]
    state = _State(config)
    out = state.out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    def stage(i: int, name: str, what: str, fn: Any) -> dict[str, Any]:
        done = state.done(name)
        if done is not None:
            print(f"== build {i}/{len(STAGES)}: {name}: done earlier, skipped", flush=True)
            return done
        _banner(i, name, what)
        result = fn()
        state.finish(name, result)
        return result

    checked = stage(1, "check", f"checking {config.data_dir}", lambda: check_data(config))
    if config.recipe == "shipped":
        stage(2, "teacher", f"fine-tuning {config.teacher_backbone}", lambda: run_teacher(config, out))
    else:
        print(f"== build 2/{len(STAGES)}: teacher: not used by the quick recipe", flush=True)
    trained = stage(3, "train", f"{config.recipe} recipe", lambda: run_train(config, out))
    tflite = out / "model.tflite"

    def do_quantize() -> dict[str, Any]:
        from sortcam.model.quantize import quantize

        card = quantize(trained["model"], config.data_dir, out=tflite, name="model", seed=config.seed,
                        bias_correct=corrected)  # fmt: skip
        return {"tflite": str(tflite), "flash_bytes": card.flash_bytes, "arena_bytes": card.arena_bytes,
                "bias_correct": corrected}  # fmt: skip

    corrected = config.recipe == "shipped"  # the shipped model's PTQ: layer-wise bias correction
    stage(4, "quantize", "full int8, TFLM check" + (", bias correction" if corrected else ""), do_quantize)

    def do_budget() -> dict[str, Any]:
        card = load_card(tflite)
        over = _fits(card, target)
        if over:
            raise DataError(
                f"the model does not fit {target.name}: {'; '.join(over)}; "
                + suggest_smaller(card, config.alpha, config.student_size, target)
            )
        return {"flash_bytes": card.flash_bytes, "arena_bytes": card.arena_bytes, "macs": card.macs,
                "latency_ms_estimate": round(card.macs / target.macs_per_s * 1000.0, 1)}  # fmt: skip

    budget = stage(5, "budget", f"flash and arena against {target.name}", do_budget)

    held = checked["held_out"]

    def do_evaluate() -> dict[str, Any]:
        from sortcam.model.evaluate import evaluate_model, write_report

        card = load_card(tflite)
        fm, fs, classes = evaluate_model(trained["model"], config.data_dir, held)
        im, isc, _ = evaluate_model(tflite, config.data_dir, held, card=card)
        agree = float((fs.probs.argmax(1) == isc.probs.argmax(1)).mean()) if len(fs.labels) else float("nan")
        (out / "float_metrics.json").write_text(json.dumps(fm, indent=2))
        report = write_report(im, isc, classes, out / "report", f"{tflite.name} (int8 TFLM) on {im['data']}",
                              model_path=tflite, card=card)  # fmt: skip
        correct = sum(int(im["confusion"][i][i]) for i in range(len(classes)))
        return {
            "split": held,
            "int8_accuracy": im["accuracy"],
            "int8_accuracy_interval95": im["accuracy_interval95"],
            "int8_correct": correct,
            "images": im["images"],
            "float_accuracy": fm["accuracy"],
            "min_recall": im["min_recall"],
            "min_recall_class": min(im["per_class"], key=lambda c: im["per_class"][c]["recall"]),
            "agreement": round(agree, 4),
            "report": str(report),
        }

    evaluated = stage(6, "evaluate", f"float and int8 on the {held} split", do_evaluate)

    def do_export() -> dict[str, Any]:
        from sortcam.tools.export import export_model

        written = export_model(tflite, config.firmware_dir)
        return {"written": [str(p) for p in written]}

    exported = stage(7, "export", "model sources into the firmware", do_export)
    if config.flash:
        from sortcam.tools.device_cli import flash

        _banner(8, "flash", f"PlatformIO upload for {target.env}")
        flash(target.env, config.port)
        state.finish("flash", {"env": target.env})
    else:
        print(f"== build 8/{len(STAGES)}: flash: skipped (add --flash to upload to the board)", flush=True)
    summary = {
        "recipe": config.recipe,
        "target": target.name,
        "split": evaluated["split"],
        "int8_accuracy": evaluated["int8_accuracy"],
        "int8_accuracy_interval95": evaluated["int8_accuracy_interval95"],
        "float_accuracy": evaluated["float_accuracy"],
        "min_recall": evaluated["min_recall"],
        "min_recall_class": evaluated["min_recall_class"],
        "agreement": evaluated["agreement"],
        **budget,
        "report": evaluated["report"],
        "firmware_sources": exported["written"],
        "this_run_s": round(time.time() - t0, 1),
    }
    (out / "summary.json").write_text(strict_json.dumps(summary, indent=2))
    print(
        "\n== sortcam build summary ==\n"
        f"accuracy (int8, {summary['split']} split): "
        f"{format_interval(evaluated['int8_correct'], evaluated['images'])} (95% interval); "
        f"float {100 * summary['float_accuracy']:.1f}%; agreement {100 * summary['agreement']:.1f}%\n"
        f"lowest class recall: {summary['min_recall_class']} {100 * summary['min_recall']:.1f}%\n"
        f"flash {budget['flash_bytes']:,} B of {target.flash_bytes:,}; arena {budget['arena_bytes']:,} B of "
        f"{target.arena_bytes:,}; {budget['macs'] / 1e6:.2f} M MACs, about {budget['latency_ms_estimate']:.0f} ms "
        f"per image on {target.name} (estimate)\n"
        f"report: {summary['report']}\nfirmware sources: {', '.join(Path(p).name for p in exported['written'])}",
        flush=True,
    )
    return summary

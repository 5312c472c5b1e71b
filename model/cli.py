"""`sortcam train`, `sortcam evaluate`, `sortcam quantize` (thin wrappers over the library).

Imports here stay cheap: TensorFlow is imported inside the handlers, only when needed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from sortcam import strict_json
from sortcam.cli_help import add_alias
from sortcam.errors import UsageError


def _float_range(lo: float, hi: float, name: str) -> Any:
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}: not a number: {text!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{name} must be in {lo}..{hi}, got {v}")
        return v

    return parse


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``train``, ``evaluate`` and ``quantize`` to the `sortcam` command."""
    p = subparsers.add_parser("train", help="train (or distil) a MobileNetV2 classifier on a folder of images")
    p.add_argument(
        "data_dir", metavar="DATA_DIR", help="folder-per-class images, or train/ val/ [test/] folders of them"
    )
    p.add_argument("--out", default="runs/train", help="run folder for model.keras, curves, logs (default runs/train)")
    p.add_argument(
        "--alpha", type=_float_range(0.35, 1.0, "--alpha"), default=0.35, help="MobileNetV2 width (0.35..1.0)"
    )
    p.add_argument("--size", default="96", help="input size N or HxW (default 96)")
    p.add_argument(
        "--fit", choices=("crop", "stretch"), default="crop", help="how a photo fits the input (default crop)"
    )
    p.add_argument(
        "--weights", default="imagenet", help="imagenet (download), a MobileNetV2 backbone weights file, or none"
    )
    p.add_argument("--epochs", type=int, default=20, help="phase 1 epochs (head, or whole net without weights)")
    p.add_argument("--fine-tune-epochs", type=int, default=10, help="phase 2 epochs at --fine-tune-lr (0 to skip)")
    p.add_argument("--fine-tune-from", type=int, default=13, help="first MobileNetV2 block unfrozen in phase 2")
    p.add_argument("--lr", type=float, default=1e-3, help="phase 1 peak learning rate")
    p.add_argument("--fine-tune-lr", type=float, default=1e-4, help="phase 2 peak learning rate")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--bn-momentum", type=float, default=0.99, help="BatchNorm moving-average momentum")
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--split", default="70/10/20", help="train/val/test percentages when DATA_DIR has no split folders")
    p.add_argument("--no-class-weights", action="store_true", help="do not weight classes by inverse frequency")
    p.add_argument(
        "--select",
        choices=("best", "last"),
        default="best",
        help="keep the best-on-val epoch with early stopping, or the last epoch",
    )
    p.add_argument("--patience", type=int, default=8, help="early-stopping patience in epochs (--select best)")
    p.add_argument("--distill", action="store_true", help="distil from --teacher with soft targets")
    p.add_argument(
        "--teacher",
        help="a teacher file (sortcam teacher), a keras.applications name (e.g. EfficientNetB0), "
        "NAME=WEIGHTS_FILE (that model with local weights) or a backbone .keras file (input [-1, 1])",
    )
    p.add_argument("--teacher-size", type=int, default=224, help="teacher input size (default 224)")
    p.add_argument("--views", type=int, default=8, help="augmented views per train image scored by the teacher")
    p.add_argument("--temperature", type=float, default=4.0, help="distillation temperature T")
    p.add_argument("--distill-alpha", type=float, default=0.7, help="weight of the soft-target loss (rest: labels)")
    p.add_argument(
        "--feature-distill",
        type=float,
        default=0.0,
        metavar="BETA",
        help="also match the teacher's pooled features, with this loss weight (default 0: off)",
    )
    p.add_argument(
        "--mixup",
        type=float,
        default=0.0,
        metavar="A",
        help="blend pairs of images in a batch, Beta(A, A), and their targets with them (default 0: off)",
    )
    p.add_argument(
        "--cutmix",
        type=float,
        default=0.0,
        metavar="P",
        help="mix this share of the batches by CutMix instead: a box of the partner image pasted in, the targets "
        "shared by its area; with a `sortcam teacher` file, which sees the same box (default 0: off)",
    )
    p.add_argument(
        "--bn-stats",
        choices=("clean", "train"),
        default="clean",
        help="the student's final BatchNorm statistics, with a `sortcam teacher` file: re-estimated on the clean "
        "train photos, or on the batches of the epoch just trained (views, mirrors, mixup / CutMix) "
        "(default clean)",
    )
    p.add_argument(
        "--init", help="start from the weights of an earlier run's model.keras (same --alpha, --size, classes)"
    )
    p.add_argument(
        "--init-select",
        metavar="WEIGHTS",
        help="weight selection: start from evenly spaced channels of a wider MobileNetV2 (with --weights none): "
        "imagenet (download) or a backbone weights file, e.g. "
        "../shared/weights/mobilenet_v2_1.0_backbone_imagenet-dogs.weights.h5",
    )
    p.add_argument(
        "--init-select-alpha", type=float, default=1.0, help="width of the --init-select network (default 1.0)"
    )
    p.add_argument("--teacher-cache", help="folder caching the view bank and teacher logits (default OUT/teacher_bank)")
    p.add_argument(
        "--resume",
        metavar="RUN",
        help="continue run folder RUN exactly where it stopped (its own recipe; runs distilled from a teacher file)",
    )
    p.add_argument(
        "--stop-after",
        type=int,
        default=0,
        metavar="N",
        help="stop cleanly after N epochs of this invocation, resumable with --resume (0: run to the end)",
    )
    p.set_defaults(func=_train, _parser=p)

    b = subparsers.add_parser(
        "build",
        help="photos to firmware in one command: check, train, quantize, evaluate, export (and --flash)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "Runs again on the same --out continue where it stopped.\n\nexamples:\n"
            "  sortcam build photos/ --out builds/mine --recipe quick             # ImageNet weights (internet)\n"
            "  sortcam build ../shared/datasets/trashnet --out builds/trashnet --recipe shipped \\\n"
            "      --teacher-backbone ../shared/weights/efficientnet_lite0_imagenet_backbone.keras --flash"
        ),
    )
    b.add_argument("data_dir", metavar="DATA_DIR", help="folder-per-class photos, or train/ val/ [test/] folders")
    b.add_argument("--out", required=True, help="build folder (model, report, state to continue from)")
    b.add_argument("--target", default="esp32cam", choices=("esp32cam", "esp32s3cam"), help="board (default esp32cam)")
    b.add_argument(
        "--recipe",
        default="shipped",
        choices=("quick", "shipped"),
        help="shipped: fine-tuned teacher + consistent distillation (default); quick: transfer learning",
    )
    b.add_argument("--flash", action="store_true", help="upload to the board with PlatformIO at the end")
    b.add_argument("--port", help="serial port for --flash (default: PlatformIO finds it)")
    b.add_argument("--firmware-dir", help="where the model sources go (default firmware/src of this checkout)")
    b.add_argument("--weights", default="imagenet", help="quick recipe: imagenet, a MobileNetV2 weights file, or none")
    b.add_argument(
        "--teacher-backbone",
        default="EfficientNetB0",
        help="shipped recipe: keras.applications name or backbone .keras file (default EfficientNetB0)",
    )
    b.add_argument(
        "--init-select",
        default="imagenet",
        metavar="WEIGHTS",
        help="shipped recipe: the student starts by weight selection from MobileNetV2 1.0: imagenet (download), "
        "a backbone weights file, or none (random)",
    )
    b.add_argument("--alpha", type=_float_range(0.35, 1.0, "--alpha"), default=0.35, help="MobileNetV2 width")
    b.add_argument("--size", type=int, default=0, help="input size (default: 84 shipped, 96 quick)")
    b.add_argument("--epochs", type=int, default=0, help="student epochs (default: 40 shipped, 10 quick)")
    b.add_argument("--teacher-epochs", type=int, default=8, help="first teacher's fine-tuning epochs (default 8)")
    b.add_argument(
        "--refine-epochs",
        type=int,
        default=25,
        help="shipped recipe: then N epochs of refinement with a second teacher on full-size photos "
        "(0: none, the shipped recipe before 2026-12-02 evening; see docs/model.md)",
    )
    b.add_argument(
        "--refine-teacher-size",
        type=int,
        default=256,
        help="shipped recipe: the second teacher's input, full-size photos fitted to SIZE x SIZE (default 256; 192 "
        "before 2026-12-06)",
    )
    b.add_argument(
        "--refine-teacher-epochs",
        type=int,
        default=15,
        help="shipped recipe: the second teacher's fine-tuning epochs (default 15; 8 before 2026-12-06)",
    )
    b.add_argument("--min-per-class", type=int, default=10, help="fewest train photos a class may have (default 10)")
    b.add_argument("--seed", type=int, default=1337)
    b.set_defaults(func=_build)

    t = subparsers.add_parser(
        "teacher",
        help="fine-tune a pretrained backbone into a reusable teacher file for distillation",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog=(
            "example:\n  sortcam teacher ../shared/datasets/trashnet --out runs/teacher "
            "--backbone ../shared/weights/efficientnet_lite0_imagenet_backbone.keras --via 84 --size 160 --folds 5"
        ),
    )
    t.add_argument("data_dir", metavar="DATA_DIR", help="folder-per-class images, or train/ val/ [test/] folders")
    t.add_argument("--out", default="runs/teacher", help="folder for teacher.keras and teacher.json")
    t.add_argument(
        "--backbone",
        default="EfficientNetB0",
        help="keras.applications name (ImageNet weights, needs internet), NAME=WEIGHTS_FILE (that model with "
        "local weights, e.g. MobileNetV2=../shared/weights/mobilenet_v2_1.0_backbone_imagenet-dogs.weights.h5), "
        "or a backbone .keras file (input [-1, 1])",
    )
    t.add_argument("--size", type=int, default=160, help="backbone input size (the image is scaled up to it)")
    t.add_argument(
        "--via", type=int, default=84, help="the student's input size the photos are fitted to first (0: none)"
    )
    t.add_argument("--fit", choices=("crop", "stretch"), default="stretch", help="how a photo fits the input")
    t.add_argument("--epochs", type=int, default=8, help="fixed number of epochs (val is only watched)")
    t.add_argument("--lr", type=float, default=3e-4, help="peak learning rate (AdamW, warm-up and cosine)")
    t.add_argument("--weight-decay", type=float, default=1e-4)
    t.add_argument(
        "--train-layers", type=int, default=37, help="top backbone layers that train (BatchNorm stays frozen)"
    )
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--dropout", type=float, default=0.2)
    t.add_argument("--mixup", type=float, default=0.0, help="mixup Beta(a, a) on every batch (0: off)")
    t.add_argument("--folds", type=int, default=0, help="stratified K-fold cross-validation on train first (0: off)")
    t.add_argument(
        "--cv-only",
        action="store_true",
        help="stop after the cross-validation (teacher.json with the CV figures and per-photo predictions, no teacher)",
    )
    t.add_argument(
        "--ensemble",
        nargs="+",
        metavar="TEACHER",
        help="average these teacher files into one instead of training (their probabilities; the CV from "
        "their out-of-fold probabilities when all were cross-validated on the same folds)",
    )
    t.add_argument(
        "--flip-average", action="store_true", help="with --ensemble: each member also sees the mirrored image"
    )
    t.add_argument("--seed", type=int, default=1337)
    t.add_argument("--split", default="70/10/20", help="train/val/test percentages when DATA_DIR has no split folders")
    t.add_argument("--no-class-weights", action="store_true", help="do not weight classes by inverse frequency")
    t.set_defaults(func=_teacher)

    e = subparsers.add_parser("evaluate", help="accuracy, F1, per-class precision/recall, confusion matrix, gallery")
    e.add_argument("model", metavar="MODEL", help="a float .keras model or a full-int8 .tflite (run in TFLM)")
    e.add_argument("data_dir", metavar="DATA_DIR", help="dataset folder (its val split is used unless --split)")
    split = e.add_argument(
        "--split",
        dest="split_name",
        default="val",
        choices=("train", "val", "test", "all"),
        help="which split to score",
    )
    add_alias(e, split, "--split-name")  # the name before issue 14, hidden for one release
    e.add_argument("--card", help="model card for the .tflite (default: the .json beside it)")
    e.add_argument("--out", help="folder for metrics.json, confusion.png, misclassified.png (default beside the model)")
    e.add_argument(
        "--fit", choices=("crop", "stretch"), help="override the fit (default: the card's or the training's)"
    )
    e.add_argument("--limit", type=int, help="score at most this many images")
    e.set_defaults(func=_evaluate)

    q = subparsers.add_parser(
        "quantize", help="full-int8 post-training quantization (optional QAT), TFLM check, model card"
    )
    q.add_argument("model", metavar="MODEL", help="a trained float .keras model")
    q.add_argument(
        "data_dir", metavar="DATA_DIR", help="dataset: train images for calibration, val for the card's metrics"
    )
    q.add_argument("--out", help="output .tflite (the card is written beside it); default model/<name>.tflite")
    q.add_argument("--name", default="sortcam_trashnet", help="model name (default sortcam_trashnet)")
    q.add_argument("--representative", type=int, default=300, help="calibration images drawn from train (default 300)")
    q.add_argument("--fit", choices=("crop", "stretch"), help="photo fit (default: the training's)")
    q.add_argument("--qat", action="store_true", help="quantization-aware fine-tuning (tfmot, legacy tf-keras) first")
    q.add_argument("--qat-epochs", type=int, default=3)
    q.add_argument(
        "--qat-distill-views",
        type=int,
        default=4,
        metavar="N",
        help="--qat fine-tunes on N augmented views per train photo towards the float model's own "
        "probabilities, BatchNorm frozen (default 4; 0: cross-entropy on the photos)",
    )
    q.add_argument(
        "--bias-correct",
        action="store_true",
        help="layer-wise bias correction: move each layer's int32 bias, in graph order, against the mean "
        "int8 - float error of its output channels on the calibration images (PTQ only; about 1 min)",
    )
    q.add_argument(
        "--bias-correct-layers",
        type=int,
        metavar="N",
        help="--bias-correct only the first N layers (the ones that matter most; default: all)",
    )
    q.add_argument("--seed", type=int, default=1337)
    q.add_argument("--no-eval", action="store_true", help="skip float/int8 val metrics in the card")
    q.add_argument(
        "--eval-data",
        metavar="DIR",
        help="dataset whose val split the card's metrics come from (default DATA_DIR; for a model fitted "
        "on a merged train+val folder, the original dataset: the card then says those photos were trained on)",
    )
    q.add_argument(
        "--recipe-card",
        metavar="CARD",
        help="card of the same recipe fitted without val: its held-out figures go in this card as "
        "recipe_metrics (for a fit on train + val, which has none of its own)",
    )
    q.add_argument("--note", help="free text stored in the card as 'notes' (e.g. how val was used)")
    q.set_defaults(func=_quantize)


def register_bench(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`sortcam bench model` lives in sortcam.tools.cli (the tools own the benchmarks)."""


def _train(args: argparse.Namespace) -> int:
    from sortcam.model.train import TrainConfig, parse_size, train

    h, w = parse_size(args.size)
    if args.distill and not args.teacher:
        raise UsageError("--distill needs --teacher")
    if args.resume:
        summary = train(_resumed_config(args))
        print(strict_json.dumps({"model": summary["model"], "best": summary["best"]}, indent=None))
        return 0
    config = TrainConfig(
        data_dir=args.data_dir,
        out_dir=args.out,
        alpha=args.alpha,
        height=h,
        width=w,
        fit=args.fit,
        weights=args.weights,
        epochs=args.epochs,
        fine_tune_epochs=args.fine_tune_epochs,
        fine_tune_from=args.fine_tune_from,
        batch_size=args.batch_size,
        lr=args.lr,
        fine_tune_lr=args.fine_tune_lr,
        weight_decay=args.weight_decay,
        dropout=args.dropout,
        bn_momentum=args.bn_momentum,
        seed=args.seed,
        split=args.split,
        class_weighting=not args.no_class_weights,
        select=args.select,
        patience=args.patience,
        distill=args.distill,
        teacher=args.teacher,
        teacher_size=args.teacher_size,
        views=args.views,
        temperature=args.temperature,
        distill_alpha=args.distill_alpha,
        feature_distill=args.feature_distill,
        mixup=args.mixup,
        cutmix=args.cutmix,
        bn_stats=args.bn_stats,
        teacher_cache=args.teacher_cache,
        init=args.init,
        init_select=args.init_select,
        init_select_alpha=args.init_select_alpha,
        stop_after=args.stop_after,
    )
    summary = train(config)
    print(strict_json.dumps({"model": summary["model"], "best": summary["best"]}, indent=None))
    return 0


# CLI option -> TrainConfig field, where the names differ.
_FIELD_OF = {"no_class_weights": "class_weighting", "out": "out_dir", "size": "height"}


def _given_options(parser: argparse.ArgumentParser, argv: list[str] | None) -> set[str] | None:
    """The options typed after ``train`` (dest names), even those given at their default value;
    ``None`` when the command line is not known (then a value at its default counts as not given)."""
    if not argv or "train" not in argv:
        return None
    unset = object()
    ns = argparse.Namespace(**{a.dest: unset for a in parser._actions if a.dest != argparse.SUPPRESS})
    parser.parse_known_args(argv[argv.index("train") + 1 :], namespace=ns)
    return {dest for dest, value in vars(ns).items() if value is not unset}


def _resumed_config(args: argparse.Namespace) -> Any:
    """The run's own recipe from ``RUN/train_config.json``; an option given with a value that differs is refused."""
    from sortcam.model.train import TrainConfig, parse_size

    defaults = TrainConfig.defaults()
    run = Path(args.resume)
    if not run.is_dir():
        raise UsageError(f"--resume {run}: no such run folder")
    try:
        saved = json.loads((run / "train_config.json").read_text())
    except (OSError, ValueError):
        raise UsageError(f"--resume {run}: no readable train_config.json (not a sortcam run folder)") from None
    if not isinstance(saved, dict):
        raise UsageError(f"--resume {run}: train_config.json is not a sortcam run's settings (not an object)")
    parser = args._parser
    given = _given_options(parser, getattr(args, "_argv", None))
    for dest, value in vars(args).items():
        if dest in ("func", "_parser", "resume", "data_dir", "out", "teacher_cache", "stop_after") or dest.startswith(
            "_"
        ):
            continue
        if dest not in given if given is not None else value == parser.get_default(dest):
            continue
        field = _FIELD_OF.get(dest, dest)
        mine: Any = value
        if dest == "size":
            h, w = parse_size(value)
            if (h, w) == (saved.get("height"), saved.get("width")):
                continue
            mine = f"{h}x{w}"
        elif dest == "no_class_weights":
            mine = not value
        if field not in saved and field in defaults:  # a setting added after the run was saved: its default there
            saved_value = defaults[field]
        elif field in saved:
            saved_value = saved[field]
        else:
            continue
        if saved_value != mine:
            raise UsageError(
                f"--resume {run}: the run is another recipe ({field} = {saved_value!r} there, {mine!r} here)"
            )
    config = TrainConfig.from_saved(saved, data_dir=args.data_dir)
    config.out_dir = str(run)
    config.resume = str(run)
    config.stop_after = args.stop_after
    if args.teacher_cache:
        config.teacher_cache = args.teacher_cache
    return config


def _build(args: argparse.Namespace) -> int:
    from sortcam.model.build import BuildConfig, build

    build(
        BuildConfig(
            data_dir=args.data_dir,
            out_dir=args.out,
            target=args.target,
            recipe=args.recipe,
            flash=args.flash,
            port=args.port,
            firmware_dir=args.firmware_dir,
            weights=args.weights,
            teacher_backbone=args.teacher_backbone,
            init_select=args.init_select,
            alpha=args.alpha,
            size=args.size,
            epochs=args.epochs,
            teacher_epochs=args.teacher_epochs,
            refine_epochs=args.refine_epochs,
            refine_teacher_size=args.refine_teacher_size,
            refine_teacher_epochs=args.refine_teacher_epochs,
            min_per_class=args.min_per_class,
            seed=args.seed,
        )
    )
    return 0


def _teacher(args: argparse.Namespace) -> int:
    if args.flip_average and not args.ensemble:
        raise UsageError("--flip-average needs --ensemble TEACHER [TEACHER ...]")
    if args.ensemble:
        if args.cv_only or args.folds:
            raise UsageError("--ensemble trains nothing: its CV comes from its members' (no --folds, --cv-only)")
        from sortcam.model.teacher_ensemble import build_ensemble

        meta = build_ensemble(args.data_dir, args.ensemble, args.out, args.flip_average, args.seed, args.split)
    else:
        meta = _train_teacher_from(args)
    brief = {k: meta[k] for k in ("val", "cv") if k in meta}
    if "cv" in brief:  # the per-photo predictions stay in teacher.json
        brief["cv"] = {k: v for k, v in brief["cv"].items() if k not in ("predicted", "labels")}
    print(json.dumps(brief))
    return 0


def _train_teacher_from(args: argparse.Namespace) -> dict[str, Any]:
    from sortcam.model.teacher import TeacherConfig, train_teacher

    return train_teacher(
        TeacherConfig(
            data_dir=args.data_dir,
            out_dir=args.out,
            backbone=args.backbone,
            size=args.size,
            via=args.via,
            fit=args.fit,
            epochs=args.epochs,
            lr=args.lr,
            weight_decay=args.weight_decay,
            train_layers=args.train_layers,
            batch_size=args.batch_size,
            dropout=args.dropout,
            mixup=args.mixup,
            folds=args.folds,
            cv_only=args.cv_only,
            seed=args.seed,
            split=args.split,
            class_weighting=not args.no_class_weights,
        )
    )


def _evaluate(args: argparse.Namespace) -> int:
    from sortcam.model.evaluate import evaluate_cli

    return evaluate_cli(args)


def _quantize(args: argparse.Namespace) -> int:
    from sortcam.model.quantize import quantize_cli

    return quantize_cli(args)


def default_out(model: str) -> Path:
    return Path(model).parent

"""End to end on a tiny generated dataset: train (weights none), quantize, evaluate, TFLM; bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_errors import one_line_error
from tinydata import TINY_SIZE, TinyModel, make_dataset

from sortcam.card import load_card
from sortcam.cli import main
from sortcam.runtime import Int8Classifier
from sortcam.tools.tflite_info import read_info


def test_tiny_model_trains_quantizes_and_runs_in_tflm(tiny_model: TinyModel) -> None:
    for name in ("model.keras", "history.json", "curves.png", "summary.json", "classes.json", "train_config.json"):
        assert (tiny_model.run / name).is_file(), name
    history = json.loads((tiny_model.run / "history.json").read_text())
    assert len(history) == 12 and all(np.isfinite(h["loss"]) for h in history)
    card = load_card(tiny_model.card)
    assert card.classes == ["blue", "green", "red"]
    assert (card.input.height, card.input.width) == (TINY_SIZE, TINY_SIZE)
    assert card.bins == {} and card.preprocess.fit == "crop"
    info = read_info(tiny_model.tflite)
    assert info.is_full_int8 and info.input_type == "int8" and info.output_type == "int8"
    assert card.flash_bytes == tiny_model.tflite.stat().st_size
    assert card.macs == info.macs > 0
    assert card.arena_bytes >= card.extra["arena_measured_bytes"] > 0
    clf = Int8Classifier(tiny_model.tflite, arena_size=card.arena_bytes)
    out = clf.predict(np.zeros(clf.input_shape, np.int8))
    assert out.shape == (3,) and abs(float(out.sum()) - 1.0) < 0.05


def test_float_and_int8_agree(tiny_dataset: Path, tmp_path: Path) -> None:
    """Quantization keeps a trained model's outputs (a small CNN that learns the shapes in seconds).

    The tiny MobileNetV2 of the pipeline test is too briefly trained from scratch to be a fair
    fidelity check: its near-chaotic activations make any rounding flip outputs.
    """
    import keras

    from sortcam.model.data import index_dataset, load_split
    from sortcam.model.evaluate import score_float, score_int8
    from sortcam.preprocess import load_image, to_float

    keras.utils.set_random_seed(0)
    idx = index_dataset(tiny_dataset)
    tr, _ = load_split(idx.split("train"), TINY_SIZE, TINY_SIZE, "crop")
    inp = keras.Input((TINY_SIZE, TINY_SIZE, 3))
    x = inp
    for filters in (8, 16):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Softmax()(keras.layers.Dense(3)(x))
    model = keras.Model(inp, out)
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy())
    model.fit(to_float(tr.images), tr.labels, batch_size=8, epochs=30, verbose=0)
    run = tmp_path / "cnn"
    run.mkdir()
    model.save(run / "model.keras")
    (run / "classes.json").write_text(json.dumps(idx.classes))
    out_path = tmp_path / "cnn.tflite"
    assert (
        main(
            ["quantize", str(run / "model.keras"), str(tiny_dataset), "--out", str(out_path), "--representative", "30"]
        )
        == 0
    )
    card = load_card(out_path)
    assert card.metrics["float_int8_agreement"] >= 0.8
    photos = [load_image(p) for p in sorted(tiny_dataset.rglob("*.*"))]
    f = score_float(model, photos, "crop")
    q = score_int8(Int8Classifier(out_path), photos, "crop")
    assert (f.argmax(1) == q.argmax(1)).mean() >= 0.9
    assert np.abs(f - q).mean() < 0.05


def test_evaluate_int8_and_float_write_reports(
    tiny_model: TinyModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for model, out in ((tiny_model.tflite, tmp_path / "i8"), (tiny_model.keras_path, tmp_path / "f")):
        rc = main(["evaluate", str(model), str(tiny_model.data), "--split-name", "all", "--out", str(out)])
        assert rc == 0
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["images"] == 60
        assert set(metrics["per_class"]) == {"blue", "green", "red"}
        assert 0.0 <= metrics["accuracy"] <= metrics["top3_accuracy"] == 1.0
        assert np.asarray(metrics["confusion"]).sum() == 60
        assert (out / "confusion.png").stat().st_size > 0 and (out / "misclassified.png").stat().st_size > 0
    assert "macro F1" in capsys.readouterr().out


def _convert(keras_path: Path, hybrid: bool) -> bytes:
    import tensorflow as tf

    from sortcam.model.train import load_keras_model

    conv = tf.lite.TFLiteConverter.from_keras_model(load_keras_model(keras_path))
    if hybrid:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    return bytes(conv.convert())


@pytest.mark.parametrize("hybrid, word", [(True, "hybrid"), (False, "float")])
def test_quantize_and_export_refuse_float_and_hybrid_models(
    tiny_model: TinyModel, tmp_path: Path, hybrid: bool, word: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.tflite"
    path.write_bytes(_convert(tiny_model.keras_path, hybrid))
    for argv in (["quantize", str(path), str(tiny_model.data)], ["export", str(path), "--out", str(tmp_path / "src")]):
        assert main(argv) == 1
        one_line_error(capsys, word)
    assert not (tmp_path / "src").exists()


def test_truncated_tflite_gets_one_line_errors(
    tiny_model: TinyModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tiny_model.tflite.read_bytes()
    cut = tmp_path / "tiny.tflite"
    cut.write_bytes(data[: len(data) // 2])
    (tmp_path / "tiny.json").write_text(tiny_model.card.read_text())
    for argv in (
        ["evaluate", str(cut), str(tiny_model.data)],
        ["quantize", str(cut), str(tiny_model.data)],
        ["export", str(cut), "--out", str(tmp_path / "src")],
    ):
        assert main(argv) == 1, argv
        one_line_error(capsys)


def test_dataset_with_other_classes_is_refused(
    tiny_model: TinyModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = make_dataset(tmp_path / "other", per_class=3, classes=("blue", "green", "purple"))
    assert main(["evaluate", str(tiny_model.tflite), str(other)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "sortcam: error: dataset classes differ from the model's (missing red; unknown purple); "
        "model classes: blue, green, red"
    ]


# Loading weights of another alpha makes Keras warn per layer before it fails: expected here.
@pytest.mark.filterwarnings("ignore:Skipping nested container:UserWarning")
def test_weights_file_that_does_not_fit_alpha(
    tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import keras

    wrong = tmp_path / "mnv2_a050.weights.h5"
    keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.5, include_top=False, weights=None).save_weights(
        wrong
    )
    rc = main(
        [
            "train",
            str(tiny_dataset),
            "--weights",
            str(wrong),
            "--alpha",
            "0.35",
            "--size",
            "32",
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    assert rc == 1
    line = one_line_error(capsys)
    assert line.startswith(f"sortcam: error: weights file {wrong} does not fit MobileNetV2 alpha=0.35")


def test_pretrained_backbone_trains_head_then_fine_tunes(tiny_dataset: Path, tmp_path: Path) -> None:
    import keras

    weights = tmp_path / "mnv2_a035.weights.h5"
    keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=None).save_weights(
        weights
    )
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                str(tiny_dataset),
                "--weights",
                str(weights),
                "--alpha",
                "0.35",
                "--size",
                "32",
                "--epochs",
                "1",
                "--fine-tune-epochs",
                "1",
                "--fine-tune-from",
                "15",
                "--batch-size",
                "16",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    phases = [h["phase"] for h in json.loads((run / "history.json").read_text())]
    assert phases == ["head", "fine-tune"]


@pytest.mark.slow
def test_distillation_from_a_backbone_file(tiny_dataset: Path, tmp_path: Path) -> None:
    import keras

    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inp)
    teacher = tmp_path / "teacher.keras"
    keras.Model(inp, keras.layers.Conv2D(16, 3, activation="relu")(x)).save(teacher)
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                str(tiny_dataset),
                "--weights",
                "none",
                "--size",
                "32",
                "--epochs",
                "1",
                "--fine-tune-epochs",
                "0",
                "--distill",
                "--teacher",
                str(teacher),
                "--teacher-size",
                "48",
                "--views",
                "2",
                "--batch-size",
                "16",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    summary = json.loads((run / "summary.json").read_text())
    assert summary["views"] == 2 and 0.0 <= summary["teacher_val_accuracy"] <= 1.0
    bank = np.load(run / "teacher_bank" / "logits.npy")
    assert bank.shape == (2 * summary["train_images"], 3)
    feats = np.load(run / "teacher_bank" / "features.npy")
    assert feats.shape == (2 * summary["train_images"], 16) and np.isfinite(feats).all()
    assert "feature_distill" not in summary


@pytest.mark.slow
def test_feature_distillation_recomputes_an_old_bank_and_ships_no_feature_head(
    tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--feature-distill needs the teacher's features: a bank cached without them is recomputed,
    and the training-only feature map is not part of the saved model."""
    import keras

    from sortcam.model.data import index_dataset, load_split, parse_split_spec
    from sortcam.model.train import TrainConfig, make_teacher_bank

    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inp)
    teacher = tmp_path / "teacher.keras"
    keras.Model(inp, keras.layers.Conv2D(12, 3, activation="relu")(x)).save(teacher)
    cache = tmp_path / "bank"
    common = [
        "--distill", "--teacher", str(teacher), "--teacher-size", "40", "--views", "2", "--teacher-cache", str(cache)
    ]  # fmt: skip
    run = tmp_path / "feat"
    assert main(_train_args(tiny_dataset, run, *common, "--feature-distill", "1.0")) == 0
    logits = np.load(cache / "logits.npy")
    feats = np.load(cache / "features.npy")
    assert feats.shape == (len(logits), 12) and np.isfinite(feats).all()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["feature_distill"] == 1.0
    model = keras.models.load_model(run / "model.keras", compile=False)
    assert model.output_shape == (None, 3)
    assert "feature_proj" not in [layer.name for layer in model.layers]
    # A bank written before features were kept is recomputed, to the same logits and features
    # (checked on the bank itself: a second student training would add nothing but time).
    config = TrainConfig(**json.loads((run / "train_config.json").read_text()))
    index = index_dataset(tiny_dataset, parse_split_spec(config.split), config.seed)
    tr, photos = load_split(index.split("train"), config.height, config.width, config.fit, keep_full=True)
    va, val_photos = load_split(index.split("val"), config.height, config.width, config.fit, keep_full=True)
    (cache / "features.npy").unlink()
    capsys.readouterr()
    bank = make_teacher_bank(config, photos, tr.labels, val_photos, va.labels, 3, cache)
    assert "has no teacher features (an older bank); recomputing it" in capsys.readouterr().out
    assert np.array_equal(bank.logits, logits) and np.array_equal(np.load(cache / "logits.npy"), logits)
    assert bank.features is not None and np.array_equal(bank.features, feats)
    assert np.array_equal(np.load(cache / "features.npy"), feats)
    # The bank now has its features: it is read back, and no photo is looked at (None would fail).
    labels = np.load(cache / "labels.npy")[:: config.views]
    bank = make_teacher_bank(config, [None] * len(labels), labels, [], labels[:0], 3, cache)  # type: ignore[list-item]
    assert "recomputing" not in capsys.readouterr().out
    assert bank.features is not None and np.array_equal(bank.features, feats)
    assert np.array_equal(bank.logits, logits)


def test_feature_distill_needs_distill(tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_train_args(tiny_dataset, tmp_path / "r", "--feature-distill", "1")) == 2
    one_line_error(capsys, "--feature-distill needs --distill")


def _train_args(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train", str(data), "--out", str(out), "--weights", "none", "--alpha", "0.35",
        "--size", str(TINY_SIZE), "--epochs", "1", "--fine-tune-epochs", "0", "--select", "last",
        "--batch-size", "8", "--weight-decay", "0", *extra,
    ]  # fmt: skip


def test_init_warm_starts_from_an_earlier_run(tiny_model: TinyModel, tiny_dataset: Path, tmp_path: Path) -> None:
    """--init copies an earlier run's weights; at a vanishing learning rate they come out unchanged."""
    import keras

    from sortcam.model.train import TrainConfig, build_student

    init = tiny_model.run / "model.keras"
    assert main(_train_args(tiny_dataset, tmp_path / "warm", "--lr", "1e-12", "--init", str(init))) == 0

    def head(model: Any) -> np.ndarray:
        return np.asarray(model.get_layer("logits").get_weights()[0])

    before = head(keras.models.load_model(init, compile=False))
    warm = keras.models.load_model(tmp_path / "warm" / "model.keras", compile=False)
    assert np.allclose(head(warm), before, atol=1e-6)
    # The control: the student that run built, before --init was applied, has a head of its own.
    config = TrainConfig(**json.loads((tmp_path / "warm" / "train_config.json").read_text()))
    keras.utils.set_random_seed(config.seed)
    fresh, _, _ = build_student(config, 3)
    assert not np.allclose(head(fresh), before, atol=1e-3)


def test_init_that_does_not_fit_is_refused(
    tiny_model: TinyModel, tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init = tiny_model.run / "model.keras"
    args = _train_args(tiny_dataset, tmp_path / "r", "--init", str(init))
    args[args.index("--size") + 1] = str(TINY_SIZE + 8)
    assert main(args) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        f"sortcam: error: --init {init}: input ({TINY_SIZE}, {TINY_SIZE}, 3) differs from --size "
        f"({TINY_SIZE + 8}, {TINY_SIZE + 8}, 3)"
    ]
    other = make_dataset(tmp_path / "other", per_class=3, classes=("blue", "green", "purple"))
    assert main(_train_args(other, tmp_path / "r2", "--init", str(init))) == 1
    one_line_error(capsys, "its classes ['blue', 'green', 'red'] differ")
    assert main(_train_args(tiny_dataset, tmp_path / "r3", "--init", str(tmp_path / "missing.keras"))) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        f"sortcam: error: model not found: {tmp_path / 'missing.keras'}"
    ]


def test_init_select_takes_evenly_spaced_channels_of_the_wider_network(tmp_path: Path) -> None:
    """Weight selection: each tensor of the 0.35 student is the evenly spaced slice of the 1.0
    network's tensor of the same name, so consecutive layers agree on which channels they keep."""
    import keras

    from sortcam.model.train import TrainConfig, build_student, selected_indices

    keras.utils.set_random_seed(3)
    wide = keras.applications.MobileNetV2(
        alpha=1.0, weights=None, include_top=False, input_shape=(TINY_SIZE, TINY_SIZE, 3)
    )
    path = tmp_path / "wide.weights.h5"
    wide.save_weights(path)
    config = TrainConfig(data_dir="-", out_dir="-", weights="none", alpha=0.35, height=TINY_SIZE, width=TINY_SIZE,
                         init_select=str(path))  # fmt: skip
    config.validate()
    _, _, backbone = build_student(config, 3)
    ours, theirs = backbone.get_layer("Conv1").get_weights()[0], wide.get_layer("Conv1").get_weights()[0]
    assert ours.shape == (3, 3, 3, 16) and theirs.shape == (3, 3, 3, 32)
    assert np.array_equal(ours, theirs[..., selected_indices(32, 16)])
    # both axes of a 1x1 projection, and the BatchNorm after it: the same channels
    ours = backbone.get_layer("block_3_project").get_weights()[0]
    theirs = wide.get_layer("block_3_project").get_weights()[0]
    rows, cols = selected_indices(theirs.shape[2], ours.shape[2]), selected_indices(theirs.shape[3], ours.shape[3])
    assert np.array_equal(ours, theirs[:, :, rows, :][..., cols])
    gamma = backbone.get_layer("block_3_project_BN").get_weights()[0]
    wide_gamma = wide.get_layer("block_3_project_BN").get_weights()[0]
    assert np.array_equal(gamma, wide_gamma[selected_indices(len(wide_gamma), len(gamma))])
    # the control: without selection the same seed gives other weights
    keras.utils.set_random_seed(3)
    config.init_select = None
    _, _, plain = build_student(config, 3)
    assert not np.array_equal(plain.get_layer("Conv1").get_weights()[0], backbone.get_layer("Conv1").get_weights()[0])


def test_init_select_refusals(tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.weights.h5"
    assert main(_train_args(tiny_dataset, tmp_path / "a", "--init-select", str(missing))) == 1
    one_line_error(capsys, "--init-select", "not found")
    junk = tmp_path / "junk.weights.h5"
    junk.write_bytes(b"not an h5 file")
    assert main(_train_args(tiny_dataset, tmp_path / "b", "--init-select", str(junk))) == 1
    one_line_error(capsys, "--init-select", "does not fit MobileNetV2 alpha=1.0")
    args = _train_args(tiny_dataset, tmp_path / "c", "--init-select", str(junk))
    args[args.index("--weights") + 1] = "imagenet"
    assert main(args) == 2
    one_line_error(capsys, "--init-select needs --weights none")
    assert main(_train_args(tiny_dataset, tmp_path / "d", "--init-select", str(junk), "--init-select-alpha", "0.35",
                            "--alpha", "0.5")) == 2  # fmt: skip
    one_line_error(capsys, "--init-select-alpha")


def test_quantize_without_train_config_says_which_fit_it_assumes(
    tiny_model: TinyModel, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A model copied without its run folder's train_config.json: the assumed fit is named, not silent."""
    import shutil

    for name in ("model.keras", "classes.json"):
        shutil.copy(tiny_model.run / name, tmp_path / name)
    out = tmp_path / "q.tflite"
    model = tmp_path / "model.keras"
    args = ["quantize", str(model), str(tiny_model.data), "--out", str(out), "--representative", "12"]
    with caplog.at_level("WARNING"):
        assert main(args) == 0
    assert "no train_config.json" in caplog.text and "assuming --fit crop" in caplog.text
    assert json.loads(out.with_suffix(".json").read_text())["preprocess"]["fit"] == "crop"
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert main([*args, "--fit", "stretch"]) == 0
    assert "no train_config.json" not in caplog.text
    assert json.loads(out.with_suffix(".json").read_text())["preprocess"]["fit"] == "stretch"


@pytest.mark.parametrize("lr, steps, warmup", [(2e-3, 100, 10), (1e-3, 57, 0), (5e-4, 7, 7)])
def test_learning_rate_follows_keras_warmup_cosine(lr: float, steps: int, warmup: int) -> None:
    """The branch-free schedule is Keras's CosineDecay curve (warm-up from lr/10, decay to lr/100)."""
    import keras

    from sortcam.model.train import _warmup_cosine

    ref = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=lr * 0.1 if warmup else lr,
        decay_steps=max(1, steps - warmup),
        alpha=0.01,
        warmup_target=lr if warmup else None,
        warmup_steps=warmup,
    )
    ours = _warmup_cosine(lr, steps, warmup)
    at = range(steps + 3)  # past the end it stays at lr/100
    np.testing.assert_allclose([float(ours(s)) for s in at], [float(ref(s)) for s in at], rtol=1e-5)
    assert float(ours(steps + 2)) == pytest.approx(lr / 100)


def test_mixup_blends_images_and_targets_alike() -> None:
    """Each example keeps the larger share of itself; labels, the teacher's tempered probabilities
    and the class weights are blended with the same share as the pixels."""
    import tensorflow as tf

    from sortcam.model.train import _mixup

    rng = np.random.default_rng(0)
    n, nc, t = 16, 3, 4.0
    # image i is filled with the value i, so each pixel tells the share of each partner
    x = np.repeat(np.arange(n, dtype=np.float32), 2 * 2 * 3).reshape(n, 2, 2, 3)
    onehot = np.eye(nc, dtype=np.float32)[rng.integers(0, nc, n)]
    logits = rng.normal(0, 3, (n, nc)).astype(np.float32)
    w = rng.uniform(0.5, 2.0, n).astype(np.float32)
    mx, my, mw = (
        np.asarray(v)
        for v in _mixup(0.4, 7, nc, t)(tf.constant(x), tf.constant(np.hstack([onehot, logits])), tf.constant(w))
    )
    p = np.exp(logits / t) / np.exp(logits / t).sum(1, keepdims=True)
    mixed = 0
    for i in range(n):
        v = float(mx[i, 0, 0, 0])
        assert np.allclose(mx[i], v)
        # v = lam * i + (1 - lam) * j for the partner j: find it by the labels and weights
        for j in range(n):
            if j == i:
                continue
            lam = (v - j) / (i - j)
            if not 0.5 - 1e-5 <= lam <= 1.0 + 1e-5:
                continue
            if np.allclose(mw[i], lam * w[i] + (1 - lam) * w[j], atol=1e-4) and np.allclose(
                my[i, :nc], lam * onehot[i] + (1 - lam) * onehot[j], atol=1e-4
            ):
                q = np.exp(my[i, nc:] / t) / np.exp(my[i, nc:] / t).sum()
                assert np.allclose(q, lam * p[i] + (1 - lam) * p[j], atol=1e-4)
                mixed += lam < 1 - 1e-3
                break
        else:
            assert v == pytest.approx(i) and np.allclose(my[i, :nc], onehot[i])  # paired with itself
    assert mixed >= n // 2  # Beta(0.4, 0.4): most examples get a real share of another


def test_mixup_bad_values_are_refused(tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_train_args(tiny_dataset, tmp_path / "r", "--mixup", "-1")) == 2
    one_line_error(capsys, "--mixup must be >= 0")
    args = _train_args(tiny_dataset, tmp_path / "r", "--mixup", "0.4", "--distill", "--teacher", "x.keras")
    assert main([*args, "--feature-distill", "1"]) == 2
    one_line_error(capsys, "--mixup and --feature-distill do not go together")


def test_layer_bias_correction_removes_the_channel_mean_errors(tiny_model: TinyModel) -> None:
    """Layer-wise bias correction moves each layer's bias, in graph order, against the mean int8 - float
    error of its output channels on the calibration images (all 53 of the tiny MobileNetV2). Measured
    again on the corrected flatbuffer against the untouched float model, every layer's channel mean
    errors have shrunk, and the Keras model keeps its weights. (The logits' RMS error need not: on
    this tiny model it is mostly noise, not bias.)"""
    from sortcam.model import bias_correct as bc
    from sortcam.model.quantize import convert_full_int8, representative_images
    from sortcam.model.train import load_keras_model

    model = load_keras_model(tiny_model.keras_path)
    before_weights = [w.copy() for w in model.get_weights()]
    classes = load_card(tiny_model.card).classes
    rep = representative_images(tiny_model.data, list(classes), TINY_SIZE, TINY_SIZE, "crop", 20, 1337)
    ts = bc.targets(model)
    assert len(ts) == 53  # the 52 BatchNorms of MobileNetV2, then the logits
    assert [t.key for t in ts[:3]] == ["Conv1_relu", "expanded_conv_depthwise_relu", "expanded_conv_project_BN"]
    assert ts[-1].key == "logits" and ts[-1].relu_max is None and ts[0].relu_max == 6.0
    lines: list[str] = []
    plain = convert_full_int8(model, rep)
    got = bc.convert_layer_bias_corrected(model, rep, plain, progress=lines.append, keep_plain_if_worse=False)
    assert got is not None
    fixed, info = got
    assert info["layers"] == info["layers_found"] == 53 and info["images"] == 20 and not info["kept_plain"]
    assert len(lines) == 53 and lines[0].startswith("bias correction: layer 1/53 Conv1_relu")
    assert info["logit_rms_error_after"] > 0 and info["logit_rms_error_before"] > 0
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before_weights, strict=True))

    fi = bc.float_interpreter(model)
    keys = [t.key for t in ts]
    fidx = bc.tensor_indices(fi, set(keys))
    relu = {t.key: t.relu_max for t in ts}
    e_plain, _ = bc.channel_errors(fi, fidx, plain, keys, relu, rep, None)
    e_fixed, _ = bc.channel_errors(fi, fidx, fixed, keys, relu, rep, None)
    before = np.array([np.nanmean(np.abs(e_plain[k])) for k in keys])
    after = np.array([np.nanmean(np.abs(e_fixed[k])) for k in keys])
    # Every layer gains, and together at least 3-fold. (Some gain less: on the flat colours of the tiny
    # photos many activations repeat exactly, so their rounding error is a step function of the bias.)
    assert (after < before).all() and after.sum() < before.sum() / 3, (keys, before, after)


def test_quantize_bias_correct_writes_what_it_did_to_the_card(tiny_model: TinyModel, tmp_path: Path) -> None:
    """`sortcam quantize --bias-correct --bias-correct-layers 1`: a full-int8 model that runs in TFLM, and the
    card's ``bias_correction`` (layers, images, plain PTQ's logit shift, the logit error before and after)."""
    out = tmp_path / "bc.tflite"
    args = ["quantize", str(tiny_model.keras_path), str(tiny_model.data), "--out", str(out), "--representative",
            "20", "--fit", "crop", "--bias-correct", "--bias-correct-layers", "1", "--no-eval"]  # fmt: skip
    assert main(args) == 0
    card = load_card(out)
    info = card.extra["bias_correction"]
    assert info["layers"] == 1 and info["images"] == 20 and info["layers_found"] == 53
    assert list(info["logit_shift_before"]) == list(card.classes)
    assert abs(sum(info["logit_shift_before"].values())) < 1e-3  # centred: softmax ignores a common shift
    assert info["logit_rms_error_before"] > 0 and info["logit_rms_error_after"] > 0
    assert read_info(out).is_full_int8
    clf = Int8Classifier(out)
    assert clf.predict(np.zeros(clf.input_shape, np.int8)).shape == (len(card.classes),)


@pytest.mark.parametrize("missing", ["flatbuffer_utils", "ops_details"])
def test_bias_correct_falls_back_to_plain_ptq_in_one_line(
    tiny_model: TinyModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    missing: str,
) -> None:  # fmt: skip
    """Where this TensorFlow cannot edit the flatbuffer or list the interpreter's ops, --bias-correct warns in
    one line and the model is plain PTQ (full int8, no ``bias_correction`` in the card)."""
    import sys

    import tensorflow as tf

    from sortcam.model.quantize import quantize

    if missing == "flatbuffer_utils":
        monkeypatch.setitem(sys.modules, "tensorflow.lite.tools.flatbuffer_utils", None)  # import raises
        tools = sys.modules.get("tensorflow.lite.tools")  # an earlier import left the name on the package
        if tools is not None:
            monkeypatch.delattr(tools, "flatbuffer_utils", raising=False)
    else:
        monkeypatch.delattr(tf.lite.Interpreter, "_get_ops_details")
    with caplog.at_level("WARNING"):
        card = quantize(tiny_model.keras_path, tiny_model.data, out=tmp_path / "p.tflite", name="p",
                        representative=20, fit="crop", bias_correct=True, evaluate=False)  # fmt: skip
    warned = [r.getMessage() for r in caplog.records if "--bias-correct" in r.getMessage()]
    assert len(warned) == 1 and "left as plain PTQ" in warned[0] and "\n" not in warned[0]
    assert "bias_correction" not in card.extra and read_info(card.model_path).is_full_int8


def test_quant_layer_error_prints_each_layers_drift(tiny_model: TinyModel, capsys: pytest.CaptureFixture[str]) -> None:
    """benchmarks/quant_layer_error.py: one row per layer with a bias, in graph order, then the logits' error."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "quant_layer_error.py"
    spec = importlib.util.spec_from_file_location("quant_layer_error", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rc = mod.main([str(tiny_model.keras_path), str(tiny_model.tflite), str(tiny_model.data), "--images", "6",
                   "--fit", "crop"])  # fmt: skip
    assert rc == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0].split() == ["layer", "rel_err", "mean_share"]
    assert rows[1].split()[0] == "Conv1_relu" and rows[-2].split()[0] == "logits" and len(rows) == 55
    assert all(0 <= float(r.split()[1]) and 0 <= float(r.split()[2]) <= 1.0001 for r in rows[1:-1])
    assert rows[-1].startswith("logits RMS error (logits): ") and rows[-1].endswith("over 6 train photos")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--bias-correct", "--qat"], "--bias-correct is for post-training quantization"),
        (["--bias-correct-layers", "3"], "--bias-correct-layers N needs --bias-correct and N >= 1"),
        (["--bias-correct", "--bias-correct-layers", "0"], "--bias-correct-layers N needs --bias-correct"),
    ],
)
def test_bias_correction_bad_options_are_refused(
    tiny_model: TinyModel, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    out = tmp_path / "x.tflite"
    assert main(["quantize", str(tiny_model.keras_path), str(tiny_model.data), "--out", str(out), *extra]) == 2
    one_line_error(capsys, message)
    assert not out.exists()


@pytest.mark.parametrize("views", [2, 0])
def test_qat_converts_to_full_int8_that_runs_in_tflm(tiny_model: TinyModel, tmp_path: Path, views: int) -> None:
    """--qat (tfmot in a legacy tf-keras child process), towards the float model on augmented views
    (the default) or by cross-entropy on the photos: a full-int8 model that loads and runs in TFLM."""
    from sortcam.model.quantize import quantize
    from sortcam.runtime import Int8Classifier

    card = quantize(tiny_model.keras_path, tiny_model.data, out=tmp_path / "q.tflite", name="q", representative=20,
                    qat=True, qat_epochs=1, qat_distill_views=views)  # fmt: skip
    extra = json.loads(card.path.read_text())
    assert extra["qat_epochs"] == 1 and extra["qat_distill_views"] == views
    clf = Int8Classifier(card.model_path.read_bytes())
    out = clf.invoke_int8(np.zeros(clf.input_shape, np.int8))
    assert out.shape[-1] == len(card.classes)
    assert 0.0 <= card.metrics["int8"]["accuracy"] <= 1.0

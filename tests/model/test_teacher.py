"""`sortcam teacher` and consistent distillation from its file: CV folds, the teacher asked about
exactly the student's mixed input, BatchNorm re-estimation, a bit-identical --resume, and the
one-line refusals (another teacher's classes, another recipe, another data set, another teacher)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_errors import one_line_error
from tinydata import TINY_CLASSES, make_dataset, tiny_backbone

from sortcam.cli import main
from sortcam.stats import stratified_folds, wilson_interval

SIZE = 32


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory, tiny_dataset: Path) -> Path:
    root = tmp_path_factory.mktemp("teacher")
    bb = tiny_backbone(root / "bb.keras")
    args = ["teacher", str(tiny_dataset), "--out", str(root / "t"), "--backbone", str(bb), "--via", str(SIZE)]
    args += ["--size", "48", "--epochs", "2", "--train-layers", "3", "--folds", "3", "--batch-size", "8"]
    assert main(args) == 0
    return root / "t" / "teacher.keras"


def _distill_args(data: Path, out: Path, teacher: Path, *extra: str) -> list[str]:
    return [
        "train", str(data), "--out", str(out), "--weights", "none", "--size", str(SIZE), "--epochs", "3",
        "--fine-tune-epochs", "0", "--select", "last", "--distill", "--teacher", str(teacher), "--views", "2",
        "--batch-size", "8", "--mixup", "0.4", "--seed", "3", *extra,
    ]  # fmt: skip


# ----------------------------------------------------------------------------- folds and intervals


@pytest.mark.parametrize("k", [2, 3, 5])
def test_cv_folds_are_stratified_and_disjoint(k: int) -> None:
    labels = np.repeat(np.arange(4), [50, 23, 7, 101])
    fold = stratified_folds(labels, k, seed=1)
    assert fold.shape == labels.shape and set(fold.tolist()) == set(range(k))  # every sample in exactly one fold
    for c in range(4):
        counts = np.bincount(fold[labels == c], minlength=k)
        assert counts.max() - counts.min() <= 1, (c, counts)  # each class spread evenly
    sizes = np.bincount(fold, minlength=k)
    assert sizes.max() - sizes.min() <= 1
    assert not np.array_equal(fold, stratified_folds(labels, k, seed=2))  # the seed matters


def test_wilson_interval_brackets_the_proportion() -> None:
    lo, hi = wilson_interval(209, 252)
    assert 0.77 < lo < 209 / 252 < hi < 0.88
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)


# ----------------------------------------------------------------------------- the teacher file


def test_teacher_file_has_its_metadata_and_cv(teacher: Path) -> None:
    meta = json.loads(teacher.with_name("teacher.json").read_text())
    assert meta["kind"] == "sortcam-teacher" and meta["classes"] == list(TINY_CLASSES)
    assert meta["cv"]["folds"] == 3 and meta["cv"]["images"] == meta["train_images"]
    lo, hi = meta["cv"]["interval95"]
    assert lo <= meta["cv"]["accuracy"] <= hi
    pred, labels = meta["cv"]["predicted"], meta["cv"]["labels"]
    assert len(pred) == len(labels) == meta["train_images"]
    right = sum(p == t for p, t in zip(pred, labels, strict=True))
    assert right / len(labels) == pytest.approx(meta["cv"]["accuracy"], abs=1e-4)
    assert len(meta["history"]) == 2 and "val" in meta


def test_cv_only_measures_a_setting_and_compares_paired_with_another(
    teacher: Path, tiny_dataset: Path, tmp_path: Path
) -> None:
    """--cv-only writes the CV figures and no teacher file; paired_compare.py reads two such records."""
    out = tmp_path / "cv"
    bb = tiny_backbone(tmp_path / "bb.keras")
    args = ["teacher", str(tiny_dataset), "--out", str(out), "--backbone", str(bb), "--via", str(SIZE)]
    args += ["--size", "48", "--epochs", "1", "--train-layers", "5", "--folds", "3", "--batch-size", "8", "--cv-only"]
    assert main(args) == 0
    meta = json.loads((out / "teacher.json").read_text())
    assert not (out / "teacher.keras").exists() and "val" not in meta and meta["config"]["cv_only"]
    assert meta["cv"]["labels"] == json.loads(teacher.with_name("teacher.json").read_text())["cv"]["labels"]
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "paired_compare.py"
    pair = [sys.executable, str(script), str(teacher.with_name("teacher.json")), str(out / "teacher.json")]
    res = subprocess.run(pair, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    a, b = (
        np.asarray(m["cv"]["predicted"]) == np.asarray(m["cv"]["labels"])
        for m in (json.loads(teacher.with_name("teacher.json").read_text()), meta)
    )
    assert f"only A right: {int((a & ~b).sum())}, only B right: {int((~a & b).sum())}" in res.stdout
    assert "3-fold CV" in res.stdout and "McNemar p =" in res.stdout
    # A CV of other folds is not paired with this one: refused in one line.
    other = json.loads((out / "teacher.json").read_text())
    other["config"]["seed"] += 1
    (tmp_path / "other.json").write_text(json.dumps(other))
    res = subprocess.run([*pair[:3], str(tmp_path / "other.json")], capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and res.stderr.strip().splitlines() == [
        "paired_compare: the two CVs differ in seed (1337 / 1338)"
    ]


def test_ensemble_cv_scores_the_mean_of_out_of_fold_probabilities(
    teacher: Path, tiny_dataset: Path, tmp_path: Path
) -> None:
    """The CV keeps each photo's out-of-fold probabilities (and its mirror's); ensemble_cv.py averages
    two settings' and scores the mean; CVs on other folds are refused in one line; a later run
    without --folds removes the stale probabilities."""
    out = tmp_path / "cv"
    bb = tiny_backbone(tmp_path / "bb.keras")
    args = ["teacher", str(tiny_dataset), "--out", str(out), "--backbone", str(bb), "--via", str(SIZE)]
    args += ["--size", "40", "--epochs", "1", "--train-layers", "5", "--batch-size", "8"]
    assert main([*args, "--folds", "3", "--cv-only"]) == 0
    records = [teacher.with_name("teacher.json"), out / "teacher.json"]
    arrays = []
    for rec in records:
        meta = json.loads(rec.read_text())
        with np.load(rec.with_name(meta["cv"]["oof_file"])) as z:
            a = {k: z[k] for k in z.files}
        assert a["probs"].argmax(1).tolist() == meta["cv"]["predicted"]
        assert a["labels"].tolist() == meta["cv"]["labels"]
        np.testing.assert_allclose(a["probs"].sum(1), 1.0, atol=1e-5)
        assert not np.allclose(a["probs"], a["probs_flip"])  # the mirror image is scored, not copied
        arrays.append(a)
    labels = arrays[0]["labels"]
    mean = (arrays[0]["probs"] + arrays[1]["probs"]) / 2
    right = int((mean.argmax(1) == labels).sum())
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "ensemble_cv.py"
    cmd = [sys.executable, str(script), *map(str, records)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    line = next(x for x in res.stdout.splitlines() if x.startswith("mean of 2:"))
    assert f"{right}/{len(labels)}" in line, (line, right)
    # The same record with other folds is not averaged with this one.
    other = tmp_path / "other"
    other.mkdir()
    with np.load(out / "cv_oof.npz") as z:
        moved = {k: z[k] for k in z.files}
    moved["fold"] = (moved["fold"] + 1) % 3
    np.savez(other / "cv_oof.npz", **moved)
    (other / "teacher.json").write_text((out / "teacher.json").read_text())
    res = subprocess.run([*cmd[:3], str(other / "teacher.json")], capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and len(res.stderr.strip().splitlines()) == 1
    assert "other photos or folds" in res.stderr
    # A final fit without --folds in that folder leaves no stale probabilities behind.
    assert main(args) == 0
    assert "cv" not in json.loads((out / "teacher.json").read_text()) and not (out / "cv_oof.npz").exists()
    res = subprocess.run([*cmd[:2], str(out / "teacher.json")], capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and res.stderr.strip().splitlines() == [
        f"ensemble_cv: {out / 'teacher.json'} has no out-of-fold probabilities (sortcam teacher --folds K)"
    ]


def test_cv_only_without_folds_is_refused(
    tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "t"
    assert main(["teacher", str(tiny_dataset), "--out", str(out), "--cv-only"]) == 2
    one_line_error(capsys, "--cv-only", "--folds")
    assert not out.exists()


def test_teacher_sees_exactly_the_students_mixed_input(teacher: Path, tiny_dataset: Path) -> None:
    import keras

    from sortcam.model.consistent import consistent_trainee, epoch_dataset, epoch_plan, make_batch
    from sortcam.model.teacher import load_teacher

    t = load_teacher(teacher, list(TINY_CLASSES), (SIZE, SIZE))
    inp = keras.Input((SIZE, SIZE, 3), name="image")
    student = keras.Model(inp, keras.layers.Dense(3)(keras.layers.Flatten()(inp)))
    trainee = consistent_trainee(student, t.model)
    rng = np.random.default_rng(0)
    pool = rng.integers(0, 256, (20, SIZE, SIZE, 3), dtype=np.uint8)
    labels = np.arange(20) % 3
    onehot = np.eye(3, dtype=np.float32)[labels]
    weight = np.linspace(0.5, 2.0, 20).astype(np.float32)
    plan = epoch_plan(20, 8, seed=5, epoch=1, mixup=0.4, flip=True)
    x, y, w = next(iter(epoch_dataset(pool, onehot, weight, plan)))
    x, y, w = np.asarray(x), np.asarray(y), np.asarray(w)
    # The dataset's batch is the plan's mix: images, labels and weights blended with one share.
    idx, mirror, partner, lam = plan[0]
    ref = make_batch(pool, onehot, weight, plan[0])
    np.testing.assert_array_equal(x, ref[0])
    assert (lam >= 0.5).all() and (lam < 1).any()
    np.testing.assert_allclose(y, lam[:, None] * onehot[idx] + (1 - lam[:, None]) * onehot[idx][partner], atol=1e-6)
    # In training mode (dropout on), the teacher's half of the trainee's output is the teacher in
    # inference mode on that very mixed tensor, and not on the photos before mixing.
    out = np.asarray(trainee(x, training=True))
    np.testing.assert_allclose(out[:, 3:], np.asarray(t.model(x, training=False)), atol=1e-5)
    unmixed = make_batch(pool, onehot, weight, (idx, mirror, np.arange(len(idx)), np.ones(len(idx), np.float32)))[0]
    assert np.abs(out[:, 3:] - np.asarray(t.model(unmixed, training=False))).max() > 1e-3
    assert len(trainee.trainable_variables) == len(student.trainable_variables)  # the teacher is frozen


def test_epoch_plan_is_a_function_of_seed_and_epoch() -> None:
    from sortcam.model.consistent import epoch_plan

    a, b = epoch_plan(50, 16, 7, 3, 0.4, True), epoch_plan(50, 16, 7, 3, 0.4, True)
    for pa, pb in zip(a, b, strict=True):
        for u, v in zip(pa, pb, strict=True):
            np.testing.assert_array_equal(u, v)
    other = epoch_plan(50, 16, 7, 4, 0.4, True)
    assert not np.array_equal(a[0][0], other[0][0])
    order = np.concatenate([p[0] for p in a])
    assert sorted(order.tolist()) == list(range(50))  # one epoch visits every pool item once


def test_cutmix_zero_draws_the_plan_of_before() -> None:
    """``--cutmix 0`` (the default, and every run before the option) must draw the very same
    numbers, or older runs would not resume bit-identically: the old draws, written out here."""
    from sortcam.model.consistent import epoch_plan

    n, batch, seed, epoch, a = 50, 16, 7, 3, 0.4
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n)
    mirror = rng.random(n) < 0.5
    for start, item in zip(range(0, n, batch), epoch_plan(n, batch, seed, epoch, a, True, cutmix=0.0), strict=True):
        b = len(order[start : start + batch])
        lam = rng.beta(a, a, size=b).astype(np.float32)
        partner = rng.permutation(b)
        assert len(item) == 4
        np.testing.assert_array_equal(item[0], order[start : start + batch])
        np.testing.assert_array_equal(item[1], mirror[order[start : start + batch]])
        np.testing.assert_array_equal(item[2], partner)
        np.testing.assert_array_equal(item[3], np.maximum(lam, 1.0 - lam))


def test_cutmix_pastes_the_same_relative_box_for_student_and_teacher() -> None:
    from sortcam.model.consistent import box_pixels, cut_share, epoch_plan, make_batch

    rng = np.random.default_rng(1)
    small = rng.integers(0, 256, (24, 12, 12, 3), dtype=np.uint8)
    big = np.repeat(np.repeat(small, 3, axis=1), 3, axis=2)  # the same views at 36x36
    labels = np.arange(24) % 3
    onehot = np.eye(3, dtype=np.float32)[labels]
    weight = np.linspace(0.5, 2.0, 24).astype(np.float32)
    plan = epoch_plan(24, 8, seed=2, epoch=0, mixup=0.4, flip=True, cutmix=1.0)
    assert all(len(item) == 5 and item[4] is not None for item in plan)
    for item in plan:
        idx, mirror, partner, _, box = item
        (xs, xt), y, w = make_batch(small, onehot, weight, item, teacher_pool=big)
        own = make_batch(small, onehot, weight, (idx, mirror, np.arange(len(idx)), np.ones(len(idx), np.float32)),
                         teacher_pool=big)[0]  # fmt: skip
        for x, ref, h in ((xs, own[0], 12), (xt, own[1], 36)):
            inside = np.zeros(x.shape[:3], bool)
            for i, (y0, y1, x0, x1) in enumerate(box_pixels(box, h, h)):
                inside[i, y0:y1, x0:x1] = True
            np.testing.assert_array_equal(x[~inside], ref[~inside])  # own pixels outside the box
            np.testing.assert_array_equal(x[inside], ref[partner][inside])  # the partner's inside it
        # the teacher's box is the student's, relative to the image, to a pixel of the student's grid
        assert np.abs(box_pixels(box, 36, 36) / 36 - box_pixels(box, 12, 12) / 12).max() <= 1 / 12 + 1e-6
        share = cut_share(box, 12, 12)
        np.testing.assert_allclose(y, share[:, None] * onehot[idx] + (1 - share[:, None]) * onehot[idx][partner],
                                   atol=1e-6)  # fmt: skip
        np.testing.assert_allclose(w, share * weight[idx] + (1 - share) * weight[idx][partner], atol=1e-6)
    assert any((cut_share(item[4], 12, 12) < 1).any() for item in plan)
    # a share of the batches: the others blend (mixup) and carry no box
    some = epoch_plan(400, 8, seed=2, epoch=0, mixup=0.4, flip=True, cutmix=0.5)
    cut = [item[4] is not None for item in some]
    assert 0 < sum(cut) < len(cut)
    assert all((item[3] >= 0.5).all() for item in some if item[4] is None)


def test_cutmix_run_trains_and_records_it(teacher: Path, tiny_dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "cut"
    assert main(_distill_args(tiny_dataset, run, teacher, "--cutmix", "0.5")) == 0
    assert json.loads((run / "train_config.json").read_text())["cutmix"] == 0.5
    assert json.loads((run / "resume/state.json").read_text())["recipe"]["cutmix"] == 0.5
    assert (run / "model.keras").is_file() and [h["epoch"] for h in json.loads((run / "history.json").read_text())] == [
        1, 2, 3]  # fmt: skip


def test_cutmix_flag_refusals(tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["train", str(tiny_dataset), "--weights", "none", "--size", str(SIZE), "--epochs", "1"]
    assert main([*base, "--out", str(tmp_path / "a"), "--cutmix", "1.5"]) == 2
    one_line_error(capsys, "--cutmix must be in 0..1")
    assert main([*base, "--out", str(tmp_path / "b"), "--cutmix", "0.5"]) == 2  # no teacher file: no consistent path
    one_line_error(capsys, "--cutmix needs")
    assert not (tmp_path / "b" / "model.keras").exists()
    assert not (tmp_path / "b" / "train_config.json").exists()  # refused before the run folder is touched
    # a run saved before the option existed had no CutMix: asking for it on --resume is another recipe
    run = tmp_path / "old"
    run.mkdir()
    (run / "train_config.json").write_text(json.dumps({"mixup": 0.4, "epochs": 3}))
    assert main(["train", str(tiny_dataset), "--resume", str(run), "--cutmix", "0.5"]) == 2
    one_line_error(capsys, "another recipe", "cutmix")
    (run / "train_config.json").write_text("[1, 2]")  # hand-edited into something else: one line, no traceback
    assert main(["train", str(tiny_dataset), "--resume", str(run)]) == 2
    one_line_error(capsys, "not a sortcam run")


def test_bn_reestimation_sets_the_data_statistics() -> None:
    import keras

    from sortcam.model.consistent import reestimate_bn

    inp = keras.Input((6, 6, 3))
    conv = keras.layers.Conv2D(4, 3, use_bias=False)
    bn = keras.layers.BatchNormalization(momentum=0.999)
    model = keras.Model(inp, bn(conv(inp)))
    x = np.random.default_rng(1).normal(2.0, 3.0, (64, 6, 6, 3)).astype(np.float32)
    feats = np.asarray(conv(x))
    assert reestimate_bn(model, x, batch=16) == 1
    np.testing.assert_allclose(np.asarray(bn.moving_mean), feats.mean(axis=(0, 1, 2)), rtol=1e-3, atol=1e-3)
    assert bn.momentum == 0.999  # restored
    # Once the statistics are the data's, re-estimating again changes nothing.
    before = np.asarray(bn.moving_variance).copy()
    reestimate_bn(model, x, batch=16)
    np.testing.assert_allclose(np.asarray(bn.moving_variance), before, rtol=1e-5)


def test_bn_stats_of_the_training_batches_are_those_batches_statistics() -> None:
    """``--bn-stats train`` averages the statistics of exactly the images training fed (mirrored,
    mixed, CutMix); on an unmixed, unmirrored plan over clean photos it is the clean re-estimate."""
    import keras

    from sortcam.model.consistent import epoch_plan, make_batch, reestimate_bn, set_bn_stats, training_batches
    from sortcam.preprocess import DEFAULT_RANGE, to_float

    inp = keras.Input((6, 6, 3))
    conv = keras.layers.Conv2D(4, 3, use_bias=False)
    bn = keras.layers.BatchNormalization(momentum=0.999)
    model = keras.Model(inp, bn(conv(inp)))
    rng = np.random.default_rng(4)
    pool = rng.integers(0, 256, (48, 6, 6, 3), dtype=np.uint8)
    onehot = np.eye(3, dtype=np.float32)[np.arange(48) % 3]
    weight = np.ones(48, np.float32)
    plan = epoch_plan(48, 16, seed=5, epoch=2, mixup=0.4, flip=True, cutmix=0.5)
    batches = list(training_batches(pool, plan))
    for xb, item in zip(batches, plan, strict=True):  # the student's half of make_batch, bit for bit
        np.testing.assert_array_equal(xb, make_batch(pool, onehot, weight, item)[0])
    assert set_bn_stats(model, "train", to_float(pool, DEFAULT_RANGE), pool, plan) == 1
    means = [np.asarray(conv(xb)).mean(axis=(0, 1, 2)) for xb in batches]
    variances = [np.asarray(conv(xb)).var(axis=(0, 1, 2)) for xb in batches]
    np.testing.assert_allclose(np.asarray(bn.moving_mean), np.mean(means, axis=0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(bn.moving_variance), np.mean(variances, axis=0), rtol=1e-3, atol=1e-3)
    assert bn.momentum == 0.999
    mixed_var = np.asarray(bn.moving_variance).copy()
    set_bn_stats(model, "clean", to_float(pool, DEFAULT_RANGE), pool, plan)
    assert not np.allclose(np.asarray(bn.moving_variance), mixed_var, rtol=1e-3)  # mixing changes the statistics
    plain = [(np.arange(s, s + 16), np.zeros(16, bool), np.arange(16), np.ones(16, np.float32)) for s in (0, 16, 32)]
    reestimate_bn(model, to_float(pool, DEFAULT_RANGE), batch=16)
    clean_var = np.asarray(bn.moving_variance).copy()
    set_bn_stats(model, "train", to_float(pool, DEFAULT_RANGE), pool, plan)
    assert not np.allclose(np.asarray(bn.moving_variance), clean_var, rtol=1e-3)
    set_bn_stats(model, "train", to_float(pool, DEFAULT_RANGE), pool, plain)
    np.testing.assert_allclose(np.asarray(bn.moving_variance), clean_var, rtol=1e-4)
    assert set_bn_stats(model, "train", to_float(pool, DEFAULT_RANGE), pool, []) == 0  # no batch: nothing changed
    np.testing.assert_allclose(np.asarray(bn.moving_variance), clean_var, rtol=1e-4)


def test_bn_stats_train_run_records_it_and_flag_refusals(
    teacher: Path, tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "bn"
    assert main(_distill_args(tiny_dataset, run, teacher, "--bn-stats", "train", "--epochs", "2")) == 0
    assert json.loads((run / "train_config.json").read_text())["bn_stats"] == "train"
    assert json.loads((run / "resume/state.json").read_text())["recipe"]["bn_stats"] == "train"
    # benchmarks/bn_stats.py re-derives both statistics of a finished run: its "train" is the saved model's
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "bn_stats.py"
    res = subprocess.run([sys.executable, str(script), str(run), "--json", str(tmp_path / "bn.json")],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr
    (got,) = json.loads((tmp_path / "bn.json").read_text())["results"]
    last = json.loads((run / "history.json").read_text())[-1]
    assert got["train"]["accuracy"] == round(last["val_accuracy"], 4)
    sys.path.insert(0, str(script.parent))
    try:
        from paired_compare import mcnemar_exact
    finally:
        sys.path.remove(str(script.parent))
    assert got["mcnemar_p"] == round(mcnemar_exact(got["only_clean_right"], got["only_train_right"]), 4)
    assert f"McNemar p = {got['mcnemar_p']}" in res.stdout
    res = subprocess.run([sys.executable, str(script), str(tmp_path / "nothing")], capture_output=True, text=True)
    assert res.returncode == 2 and "not a finished run folder" in res.stderr
    res = subprocess.run([sys.executable, str(script), str(run), "--save-train", str(run / "m.keras")],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 2 and "inside the run" in res.stderr and not (run / "m.keras").exists()
    other = tmp_path / "other"  # another run's folder is not overwritten either
    other.mkdir()
    (other / "train_config.json").write_text("{}")
    res = subprocess.run([sys.executable, str(script), str(run), "--save-train", str(other / "model.keras")],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 2 and "already holds train_config.json" in res.stderr
    assert (other / "train_config.json").read_text() == "{}"
    (run / "summary.json").rename(tmp_path / "summary.json")  # a run stopped early is not scored as finished
    res = subprocess.run([sys.executable, str(script), str(run)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "summary.json" in res.stderr
    (tmp_path / "summary.json").rename(run / "summary.json")
    # an option typed at its default value is still typed: it must match the run, not be dropped
    for opt, value, field in (("--bn-stats", "clean", "bn_stats"), ("--mixup", "0", "mixup")):
        assert main(["train", str(tiny_dataset), "--resume", str(run), opt, value]) == 2
        one_line_error(capsys, "another recipe", field)
    # a run saved before the option re-estimated on clean photos: asking for "train" on --resume is another recipe
    old = tmp_path / "old"
    old.mkdir()
    (old / "train_config.json").write_text(json.dumps({"mixup": 0.4, "epochs": 3}))
    assert main(["train", str(tiny_dataset), "--resume", str(old), "--bn-stats", "train"]) == 2
    one_line_error(capsys, "another recipe", "bn_stats")
    base = ["train", str(tiny_dataset), "--weights", "none", "--size", str(SIZE), "--epochs", "1"]
    assert main([*base, "--out", str(tmp_path / "b"), "--bn-stats", "train"]) == 2  # no teacher file
    one_line_error(capsys, "--bn-stats needs")
    assert not (tmp_path / "b" / "model.keras").exists()
    with pytest.raises(SystemExit) as exc:
        main([*base, "--out", str(tmp_path / "c"), "--bn-stats", "val"])
    assert exc.value.code == 2
    assert "--bn-stats" in capsys.readouterr().err


def test_soup_averages_the_students_weights_and_refuses_other_architectures(
    teacher: Path, tiny_dataset: Path, tmp_path: Path
) -> None:
    import keras

    bench = Path(__file__).resolve().parents[2] / "benchmarks"
    sys.path.insert(0, str(bench))
    try:
        from soup import average_weights
    finally:
        sys.path.remove(str(bench))
    a, b = (keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]) for _ in range(2))
    mean = average_weights([a, b])
    np.testing.assert_allclose(mean[0], (a.get_weights()[0] + b.get_weights()[0]) / 2, rtol=1e-6)
    with pytest.raises(ValueError, match="architecture"):
        average_weights([a, keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])])
    runs = [tmp_path / "s1", tmp_path / "s2"]
    assert main(_distill_args(tiny_dataset, runs[0], teacher, "--epochs", "2")) == 0
    assert main(_distill_args(tiny_dataset, runs[1], teacher, "--epochs", "2", "--cutmix", "0.5")) == 0
    out = tmp_path / "soup"
    res = subprocess.run([sys.executable, str(bench / "soup.py"), *map(str, runs), "--out", str(out), "--json",
                          str(tmp_path / "soup.json")], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr
    rec = json.loads((tmp_path / "soup.json").read_text())
    assert [m["run"] for m in rec["members"]] == list(map(str, runs))
    assert rec["soup"]["interval"] in res.stdout and "right" in rec["ensemble_of_probabilities"]
    soup = keras.models.load_model(out / "model.keras", compile=False)
    firsts = [keras.models.load_model(r / "model.keras", compile=False).get_weights()[0] for r in runs]
    np.testing.assert_allclose(soup.get_weights()[0], (firsts[0] + firsts[1]) / 2, rtol=1e-5, atol=1e-6)
    assert json.loads((out / "train_config.json").read_text())["bn_stats"] == "train"
    assert json.loads((out / "summary.json").read_text())["soup_of"] == list(map(str, runs))
    res = subprocess.run([sys.executable, str(bench / "soup.py"), str(runs[0]), "--out", str(out)],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert res.returncode == 2 and "at least two runs" in res.stderr
    res = subprocess.run([sys.executable, str(bench / "soup.py"), *map(str, runs), "--out", str(runs[1])],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert res.returncode == 2 and "inside the run" in res.stderr
    res = subprocess.run([sys.executable, str(bench / "soup.py"), *map(str, runs), "--out", str(out)],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert res.returncode == 2 and "already holds" in res.stderr  # the soup written above is kept
    cfg = json.loads((runs[1] / "train_config.json").read_text())
    (runs[1] / "train_config.json").write_text(json.dumps({**cfg, "seed": 4}))
    res = subprocess.run([sys.executable, str(bench / "soup.py"), *map(str, runs), "--out", str(tmp_path / "s3")],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert res.returncode == 2 and "seed" in res.stderr and len(res.stderr.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- resume


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return _run_together(args)[0]


def _run_together(*runs: list[str]) -> list[subprocess.CompletedProcess[str]]:
    """``sortcam`` runs side by side, each its own process (most of a tiny run is TensorFlow
    starting and tracing, on one core); their results in order."""
    env = dict(os.environ, SORTCAM_DETERMINISTIC="1", TF_CPP_MIN_LOG_LEVEL="3")
    procs = [subprocess.Popen([sys.executable, "-m", "sortcam.cli", *args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for args in runs]  # fmt: skip
    done = []
    try:
        for proc, args in zip(procs, runs, strict=True):
            out, err = proc.communicate(timeout=600)
            done.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return done


def test_resume_continues_bit_identically(teacher: Path, tiny_dataset: Path, tmp_path: Path) -> None:
    # The whole run and the stopped one are independent (each its own folder and view pool).
    whole_args = _distill_args(tiny_dataset, tmp_path / "whole", teacher)
    part_args = _distill_args(tiny_dataset, tmp_path / "part", teacher, "--stop-after", "1")
    whole, part = _run_together(whole_args, part_args)
    assert whole.returncode == 0, whole.stderr[-2000:]
    assert part.returncode == 0, part.stderr[-2000:]
    assert "--resume" in part.stdout and json.loads((tmp_path / "part/resume/state.json").read_text())["epoch"] == 1
    rest = _run(["train", str(tiny_dataset), "--resume", str(tmp_path / "part")])
    assert rest.returncode == 0, rest.stderr[-2000:]
    a, b = np.load(tmp_path / "whole/resume/state.npz"), np.load(tmp_path / "part/resume/state.npz")
    assert a.files == b.files and len(a.files) > 100
    different = [k for k in a.files if not np.array_equal(a[k], b[k])]
    assert not different, f"{len(different)} of {len(a.files)} variables differ after resuming"
    hist = json.loads((tmp_path / "part/history.json").read_text())
    assert [h["epoch"] for h in hist] == [1, 2, 3] and [h["run"] for h in hist] == [1, 2, 2]
    assert (tmp_path / "part/curves.png").is_file()


def _strict(path: Path) -> Any:
    """The file's JSON, refusing ``NaN`` and ``Infinity`` (not JSON: browsers and jq refuse them)."""

    def refuse(name: str) -> None:
        raise AssertionError(f"{path.name}: {name} is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_a_run_with_no_val_writes_strict_json_and_resumes(teacher: Path, tmp_path: Path) -> None:
    """A fit on train + val (a train/ folder alone) has no val figures: its history and summary
    say null, which every JSON reader takes, and a resume reads them back."""
    data = make_dataset(tmp_path / "trainval" / "train", per_class=8)
    run = tmp_path / "run"
    part = _run(_distill_args(tmp_path / "trainval", run, teacher, "--stop-after", "1"))
    assert part.returncode == 0, part.stderr[-2000:]
    assert data.is_dir() and _strict(run / "history.json")[0]["val_accuracy"] is None
    rest = _run(["train", str(tmp_path / "trainval"), "--resume", str(run)])
    assert rest.returncode == 0, rest.stderr[-2000:]
    hist = _strict(run / "history.json")
    assert [h["epoch"] for h in hist] == [1, 2, 3] and all(h["val_accuracy"] is None for h in hist)
    summary = _strict(run / "summary.json")
    assert summary["val_images"] == 0 and summary["best"]["val_accuracy"] is None
    assert (run / "curves.png").is_file()


def test_resume_refusals_are_one_line_and_overwrite_nothing(
    teacher: Path, tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    import keras

    mine = tmp_path / "t"
    shutil.copytree(teacher.parent, mine)
    run = tmp_path / "run"
    assert main(_distill_args(tiny_dataset, run, mine / "teacher.keras", "--stop-after", "1")) == 0
    capsys.readouterr()
    state = (run / "resume/state.npz").read_bytes()
    history = (run / "history.json").read_bytes()

    assert main(["train", str(tiny_dataset), "--resume", str(run), "--mixup", "1.0"]) == 2
    one_line_error(capsys, "another recipe", "mixup")
    other_data = make_dataset(tmp_path / "other", per_class=10, seed=9)
    assert main(["train", str(other_data), "--resume", str(run)]) == 2
    one_line_error(capsys, "another data set")
    assert main(["train", str(tiny_dataset), "--resume", str(tmp_path / "nothing")]) == 2
    one_line_error(capsys, "no such run folder")
    # Another teacher at the same path: same classes and input, other weights.
    m = keras.models.load_model(mine / "teacher.keras", compile=False)
    m.set_weights([w + 0.01 for w in m.get_weights()])
    m.save(mine / "teacher.keras")
    capsys.readouterr()
    assert main(["train", str(tiny_dataset), "--resume", str(run)]) == 2
    one_line_error(capsys, "another teacher")
    assert (run / "resume/state.npz").read_bytes() == state
    assert (run / "history.json").read_bytes() == history


def test_teacher_with_other_classes_is_refused(
    teacher: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_dataset(tmp_path / "d", per_class=8, classes=("blue", "green", "yellow"))
    out = tmp_path / "r"
    assert main(_distill_args(data, out, teacher)) == 1
    one_line_error(capsys, "teacher", "classes")
    assert not (out / "model.keras").exists()


def test_resume_of_a_run_without_a_teacher_file_is_refused(
    tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "plain"
    run.mkdir()
    (run / "train_config.json").write_text(json.dumps({"data_dir": str(tiny_dataset), "distill": False}))
    assert main(["train", str(tiny_dataset), "--resume", str(run)]) == 2
    one_line_error(capsys, "--resume")


def test_a_bank_written_by_another_teacher_is_refused(
    tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--teacher-cache that holds another teacher's bank: one line, and the bank stays as it was."""
    a, b = tiny_backbone(tmp_path / "a.keras"), tiny_backbone(tmp_path / "b.keras")
    cache = tmp_path / "bank"
    args = ["train", str(tiny_dataset), "--weights", "none", "--size", str(SIZE), "--epochs", "1",
            "--fine-tune-epochs", "0", "--distill", "--teacher-size", "40", "--views", "2", "--batch-size", "16",
            "--teacher-cache", str(cache)]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "r1"), "--teacher", str(a)]) == 0
    logits = (cache / "logits.npy").read_bytes()
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "r2"), "--teacher", str(b)]) == 1
    one_line_error(capsys, "--teacher-cache", "teacher")
    assert (cache / "logits.npy").read_bytes() == logits


# ----------------------------------------------------------------------------- a full-size teacher


@pytest.fixture(scope="module")
def big_teacher(tmp_path_factory: pytest.TempPathFactory, tiny_dataset: Path) -> Path:
    """A teacher trained on full-size photos at 48x48 (``--via 0``), larger than the student's 32x32."""
    root = tmp_path_factory.mktemp("big_teacher")
    bb = tiny_backbone(root / "bb.keras")
    args = ["teacher", str(tiny_dataset), "--out", str(root / "t"), "--backbone", str(bb), "--via", "0"]
    args += ["--size", "48", "--epochs", "1", "--train-layers", "3", "--batch-size", "8"]
    assert main(args) == 0
    return root / "t" / "teacher.keras"


def test_a_full_size_teacher_sees_the_same_mixed_view_at_its_size(big_teacher: Path, tiny_dataset: Path) -> None:
    import keras
    import tensorflow as tf

    from sortcam.model.consistent import consistent_trainee, epoch_dataset, epoch_plan, view_pool
    from sortcam.model.data import index_dataset, load_split, parse_split_spec
    from sortcam.model.teacher import load_teacher
    from sortcam.model.train import TrainConfig

    t = load_teacher(big_teacher, list(TINY_CLASSES))
    assert t.input_size == 48
    config = TrainConfig(data_dir=str(tiny_dataset), out_dir="unused", height=SIZE, width=SIZE, views=3, seed=4)
    split = index_dataset(str(tiny_dataset), parse_split_spec(config.split), 4).split("train")
    tr, full = load_split(split, SIZE, SIZE, config.fit, keep_full=True)
    pool, labels, tpool = view_pool(config, full, tr.labels, Path(tempfile.mkdtemp()), teacher_size=48)
    assert tpool is not None and tpool.shape == (len(pool), 48, 48, 3) and pool.shape[1:] == (SIZE, SIZE, 3)
    onehot = np.eye(3, dtype=np.float32)[labels]
    plan = epoch_plan(len(pool), 8, seed=5, epoch=0, mixup=0.4, flip=True)
    (x, xt), _, _ = next(iter(epoch_dataset(pool, onehot, np.ones(len(pool), np.float32), plan, tpool)))
    x, xt = np.asarray(x), np.asarray(xt)
    # The teacher's image, brought down to the student's size, is the student's image; the same
    # views mixed with other partners are not.
    down = np.asarray(tf.image.resize(xt, (SIZE, SIZE), antialias=True))
    idx, mirror, partner, lam = plan[0]
    other = epoch_dataset(pool, onehot, np.ones(len(pool), np.float32),
                          [(idx, mirror, np.roll(partner, 1), lam)], tpool)  # fmt: skip
    (_, xt_other), _, _ = next(iter(other))
    down_other = np.asarray(tf.image.resize(np.asarray(xt_other), (SIZE, SIZE), antialias=True))
    same, mismatched = np.abs(down - x).mean(), np.abs(down_other - x).mean()
    assert same < 0.35 * mismatched, (same, mismatched)
    # The trainee takes both; its teacher half is the teacher on the large image.
    inp = keras.Input((SIZE, SIZE, 3), name="image")
    student = keras.Model(inp, keras.layers.Dense(3)(keras.layers.Flatten()(inp)))
    trainee = consistent_trainee(student, t.model)
    out = np.asarray(trainee((x, xt), training=True))
    np.testing.assert_allclose(out[:, 3:], np.asarray(t.model(xt, training=False)), atol=1e-5)
    np.testing.assert_allclose(out[:, :3], np.asarray(student(x)), atol=1e-5)


def test_a_run_with_a_full_size_teacher_resumes_bit_identically(
    big_teacher: Path, tiny_dataset: Path, tmp_path: Path
) -> None:
    args = ["--epochs", "2", "--teacher-cache", str(tmp_path / "views")]
    whole = _run([*_distill_args(tiny_dataset, tmp_path / "whole", big_teacher), *args])
    assert whole.returncode == 0, whole.stderr[-2000:]
    assert "a second view pool" in whole.stdout
    summary = json.loads((tmp_path / "whole/summary.json").read_text())
    assert summary["teacher_input"] == 48 and "48x48" in summary["teacher_sees"]
    part = _run([*_distill_args(tiny_dataset, tmp_path / "part", big_teacher), *args, "--stop-after", "1"])
    assert part.returncode == 0, part.stderr[-2000:]
    assert "view pool: reusing" in part.stdout  # both pools from the cache the first run wrote
    rest = _run(["train", str(tiny_dataset), "--resume", str(tmp_path / "part")])
    assert rest.returncode == 0, rest.stderr[-2000:]
    a, b = np.load(tmp_path / "whole/resume/state.npz"), np.load(tmp_path / "part/resume/state.npz")
    assert a.files == b.files
    assert not [k for k in a.files if not np.array_equal(a[k], b[k])]


# ----------------------------------------------------------------------------- ensembles and a kept CV


def test_a_cv_measured_earlier_is_kept_by_the_final_fit_of_the_same_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Kept only for the same setting on the same photos: another setting, or a photo replaced
    under the same name (the labels unchanged), cross-validates anew."""
    from PIL import Image

    data = make_dataset(tmp_path / "data", per_class=14, seed=5)
    out = tmp_path / "t"
    bb = tiny_backbone(tmp_path / "bb.keras")
    args = ["teacher", str(data), "--out", str(out), "--backbone", str(bb), "--via", str(SIZE)]
    args += ["--size", "40", "--epochs", "1", "--train-layers", "3", "--folds", "3", "--batch-size", "8"]
    assert main([*args, "--cv-only"]) == 0
    cv = json.loads((out / "teacher.json").read_text())["cv"]
    oof = (out / "cv_oof.npz").read_bytes()
    capsys.readouterr()
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "CV finished earlier, kept" in printed and "fold 1/3" not in printed  # no fold trained again
    meta = json.loads((out / "teacher.json").read_text())
    assert meta["cv"] == cv and (out / "cv_oof.npz").read_bytes() == oof and (out / "teacher.keras").is_file()
    # Another setting in that folder does not take the CV: it cross-validates anew.
    assert main([*args[:-2], "--epochs", "2", "--folds", "3", "--cv-only"]) == 0
    assert "fold 1/3" in capsys.readouterr().out
    assert main([*args[:-2], "--epochs", "2", "--folds", "3"]) == 0
    assert "CV finished earlier, kept" in capsys.readouterr().out
    # The same setting after one photo was replaced by another of the same class and name.
    assert main([*args[:-2], "--epochs", "2", "--folds", "3", "--cv-only"]) == 0
    from sortcam.model.data import index_dataset, parse_split_spec

    photo = index_dataset(str(data), parse_split_spec("70/10/20"), 1337).split("train").paths[0]
    Image.open(photo).resize((30, 30)).save(photo)
    capsys.readouterr()
    assert main([*args[:-2], "--epochs", "2", "--folds", "3"]) == 0
    printed = capsys.readouterr().out
    assert "fold 1/3" in printed and "kept" not in printed


def test_an_ensemble_teacher_averages_its_members_and_teaches_a_student(
    teacher: Path, big_teacher: Path, tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two members on the same folds: the ensemble's CV is the mean of their out-of-fold
    probabilities (mirrors included with --flip-average); the file outputs the log of the mean
    probability; a student distils from it. A member of another input size is resized to it."""
    from sortcam.model.teacher import load_teacher

    second = tmp_path / "second"
    bb = tiny_backbone(tmp_path / "bb.keras")
    args = ["teacher", str(tiny_dataset), "--out", str(second), "--backbone", str(bb), "--via", str(SIZE)]
    args += ["--size", "40", "--epochs", "1", "--train-layers", "5", "--folds", "3", "--batch-size", "8"]
    assert main(args) == 0
    members = [teacher, second / "teacher.keras"]
    ens = tmp_path / "ens"
    ens_args = ["teacher", str(tiny_dataset), "--ensemble", *map(str, members), "--flip-average", "--out", str(ens)]
    assert main(ens_args) == 0
    meta = json.loads((ens / "teacher.json").read_text())
    views = []
    for m in members:
        with np.load(m.with_name("cv_oof.npz")) as z:
            views += [z["probs"], z["probs_flip"]]
            labels = z["labels"]
    pred = np.mean(views, axis=0).argmax(1)
    assert meta["cv"]["predicted"] == pred.tolist()
    assert meta["cv"]["accuracy"] == pytest.approx(float((pred == labels).mean()), abs=1e-4)
    assert [x["sha256"] for x in meta["members"]] and "val" in meta

    t = load_teacher(ens / "teacher.keras", list(TINY_CLASSES))
    loaded = [load_teacher(m, list(TINY_CLASSES)).model for m in members]
    x = np.random.default_rng(0).uniform(-1, 1, (4, SIZE, SIZE, 3)).astype(np.float32)
    probs = [np.asarray(tf_softmax(m(v, training=False))) for m in loaded for v in (x, x[:, :, ::-1])]
    np.testing.assert_allclose(np.asarray(tf_softmax(t.model(x))), np.mean(probs, axis=0), atol=1e-5)

    run = _run(_distill_args(tiny_dataset, tmp_path / "student", ens / "teacher.keras", "--epochs", "1"))
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads((tmp_path / "student/summary.json").read_text())
    assert summary["teacher_cv_accuracy"] == meta["cv"]["accuracy"]

    # Members of two input sizes: the ensemble takes the larger; without a shared CV it says why.
    mixed = tmp_path / "mixed"
    assert main(["teacher", str(tiny_dataset), "--ensemble", str(teacher), str(big_teacher), "--out", str(mixed)]) == 0
    meta = json.loads((mixed / "teacher.json").read_text())
    assert "cv" not in meta and "no cross-validation" in meta["cv_missing"]
    assert load_teacher(mixed / "teacher.keras", list(TINY_CLASSES)).input_size == 48


def tf_softmax(logits: object) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def test_ensemble_refusals_are_one_line(
    teacher: Path, tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_dataset(tmp_path / "d", per_class=8, classes=("blue", "green", "yellow"))
    out = tmp_path / "e"
    assert main(["teacher", str(data), "--ensemble", str(teacher), "--out", str(out)]) == 1
    one_line_error(capsys, "teacher", "classes")
    assert main(["teacher", str(tiny_dataset), "--ensemble", str(teacher), str(teacher), "--out", str(out)]) == 2
    one_line_error(capsys, "same teacher file twice")
    assert main(["teacher", str(tiny_dataset), "--ensemble", str(teacher), "--out", str(teacher.parent)]) == 2
    one_line_error(capsys, "holds a member")
    assert main(["teacher", str(tiny_dataset), "--flip-average", "--out", str(out)]) == 2
    one_line_error(capsys, "--flip-average", "--ensemble")
    assert main(["teacher", str(tiny_dataset), "--ensemble", str(teacher), "--folds", "3", "--out", str(out)]) == 2
    one_line_error(capsys, "--ensemble")
    assert main(["teacher", str(tiny_dataset), "--ensemble", str(tmp_path / "none.keras"), "--out", str(out)]) == 1
    one_line_error(capsys, "not found")
    assert not (out / "teacher.keras").exists()


def test_teacher_mixup_blends_the_batches(
    tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--mixup trains on blended images and labels: the same seed without it gives another loss;
    its value is part of the setting (teacher.json), and out of range it is refused in one line."""
    bb = tiny_backbone(tmp_path / "bb.keras")
    losses = []
    for mixup in ("0", "0.4"):
        out = tmp_path / f"m{mixup}"
        args = ["teacher", str(tiny_dataset), "--out", str(out), "--backbone", str(bb), "--via", str(SIZE)]
        args += ["--size", "40", "--epochs", "1", "--train-layers", "3", "--batch-size", "8", "--mixup", mixup]
        assert main(args) == 0
        meta = json.loads((out / "teacher.json").read_text())
        assert meta["config"]["mixup"] == float(mixup)
        losses.append(meta["history"][0]["loss"])
    assert losses[0] != pytest.approx(losses[1], rel=1e-3), losses
    capsys.readouterr()
    assert main(["teacher", str(tiny_dataset), "--out", str(tmp_path / "bad"), "--mixup", "-1"]) == 2
    one_line_error(capsys, "--mixup")
    assert not (tmp_path / "bad").exists()


def test_a_keras_application_with_a_local_weights_file_becomes_a_teacher(
    tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--backbone NAME=WEIGHTS_FILE: keras.applications.NAME built from the file, not the download.
    The teacher's backbone carries exactly the file's weights (frozen BatchNorm keeps them; the
    first convolution is below the trained top layers), it is saved and loads back as a teacher;
    a missing file, a name that is no application and weights of another width are refused in
    one line, and nothing is written."""
    import keras

    from sortcam.model.teacher import load_teacher

    src = keras.applications.MobileNetV2(alpha=0.35, include_top=False, input_shape=(32, 32, 3), weights=None)
    weights = tmp_path / "mnv2_035.weights.h5"
    src.save_weights(str(weights))
    out = tmp_path / "t"
    spec = f"MobileNetV2={weights}"
    args = ["teacher", str(tiny_dataset), "--out", str(out), "--via", str(SIZE), "--size", "32", "--epochs", "1"]
    args += ["--train-layers", "2", "--batch-size", "8"]
    # alpha is the application's default (1.0): this file's 0.35 widths do not fit it.
    assert main([*args, "--backbone", spec]) == 1
    one_line_error(capsys, "cannot load", "MobileNetV2")
    assert main([*args, "--backbone", f"MobileNetV2={tmp_path / 'none.weights.h5'}"]) == 1
    one_line_error(capsys, "not found")
    assert main([*args, "--backbone", f"NoSuchNet={weights}"]) == 2
    one_line_error(capsys, "NoSuchNet", "keras.applications")
    assert not out.exists() or not any(out.iterdir())

    src = keras.applications.MobileNetV2(include_top=False, input_shape=(32, 32, 3), weights=None)
    weights = tmp_path / "mnv2_100.weights.h5"
    src.save_weights(str(weights))
    assert main([*args, "--backbone", f"MobileNetV2={weights}"]) == 0
    meta = json.loads((out / "teacher.json").read_text())
    assert meta["config"]["backbone"] == f"MobileNetV2={weights}"
    model = load_teacher(out / "teacher.keras", list(TINY_CLASSES), (SIZE, SIZE)).model
    first_conv = src.get_layer("Conv1").get_weights()[0]
    got = [w for w in model.weights if w.shape == first_conv.shape and "Conv1" in w.path]
    assert got, [w.path for w in model.weights][:5]
    np.testing.assert_array_equal(np.asarray(got[0]), first_conv)

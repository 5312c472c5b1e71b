"""Quantization-aware fine-tuning, run as a child process by ``sortcam quantize --qat``.

tensorflow-model-optimization (tfmot) works only with legacy tf-keras
(``TF_USE_LEGACY_KERAS=1``, set by the parent) and only with flat functional models.
So this script reads the Keras 3 student's weights, rebuilds the same MobileNetV2
student flat in tf-keras (``input_tensor=`` puts the backbone layers in the top-level
graph), copies the weights in order, wraps it with ``quantize_model``, fine-tunes a
few epochs at a low rate on the train split and converts to full int8. By default
(``--distill-views 4``) it fine-tunes on augmented views towards the float model's own
probabilities with BatchNorm frozen; ``--distill-views 0`` is cross-entropy on the photos.

Only the MobileNetV2 students that ``sortcam train`` builds are supported.

Usage: ``python -m sortcam.model.qat MODEL.keras DATA_DIR OUT.tflite --height H --width W ...``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sortcam.model.qat")
    ap.add_argument("model")
    ap.add_argument("data_dir")
    ap.add_argument("out")
    ap.add_argument("--height", type=int, required=True)
    ap.add_argument("--width", type=int, required=True)
    ap.add_argument("--fit", default="crop")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--representative", type=int, default=300)
    ap.add_argument("--classes", required=True)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--distill-views", type=int, default=4,
                    help="fine-tune on this many augmented views per train photo towards the float model's own "
                    "probabilities (KL), BatchNorm frozen; 0: cross-entropy on the photos")  # fmt: skip
    args = ap.parse_args(argv)
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        print("sortcam.model.qat must run with TF_USE_LEGACY_KERAS=1 (tfmot needs tf-keras)", file=sys.stderr)
        return 2

    import keras as keras3  # Keras 3 reads the .keras file
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras

    from sortcam.model.data import class_weights, index_for, load_split
    from sortcam.model.quantize import train_meta
    from sortcam.preprocess import to_float

    classes = args.classes.split(",")
    src = keras3.models.load_model(args.model, compile=False)
    weights = src.get_weights()
    cfg_path = Path(args.model).with_name("train_config.json")
    cfg = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
    alpha = float(cfg.get("alpha", 0.35))
    inputs = tf_keras.Input((args.height, args.width, 3), name="image")
    base = tf_keras.applications.MobileNetV2(input_tensor=inputs, alpha=alpha, include_top=False, weights=None)
    x = tf_keras.layers.GlobalAveragePooling2D(name="pool")(base.output)
    x = tf_keras.layers.Dropout(float(cfg.get("dropout", 0.2)), name="dropout")(x)
    x = tf_keras.layers.Dense(len(classes), name="logits")(x)
    out = tf_keras.layers.Softmax(name="probs")(x)
    flat = tf_keras.Model(inputs, out)
    target = flat.get_weights()
    if len(target) != len(weights) or any(a.shape != b.shape for a, b in zip(target, weights, strict=True)):
        print(
            "QAT supports only the MobileNetV2 students built by sortcam train (weights do not line up)",
            file=sys.stderr,
        )
        return 3
    flat.set_weights(weights)
    # Draw train as the run did (a folder without split folders is split by its seed).
    index = index_for(args.data_dir, train_meta(Path(args.model)), classes=classes)
    tr, full = load_split(index.split("train"), args.height, args.width, args.fit, keep_full=args.distill_views > 0)
    x_tr = to_float(tr.images)
    cw = class_weights(tr.labels, len(classes))
    if args.distill_views > 0:
        # The float model teaches its own quantized copy, on augmented views, with BatchNorm in
        # inference mode (its statistics are the float model's): only the rounding is learnt around.
        from sortcam.model.augment import AugmentSpec, augment_photo
        from sortcam.preprocess import fit_resize

        for layer in flat.layers:
            if isinstance(layer, tf_keras.layers.BatchNormalization):
                layer.trainable = False
        spec = AugmentSpec(**cfg.get("augment", {}))
        vrng = np.random.default_rng(args.seed)
        views = np.stack([fit_resize(p if v == 0 else augment_photo(p, vrng, spec), args.height, args.width, args.fit)
                          for p in full for v in range(args.distill_views)])  # fmt: skip
        flip = vrng.random(len(views)) < 0.5
        views[flip] = views[flip][:, :, ::-1]
        x_fit = to_float(views)
        y_fit = np.asarray(src.predict(x_fit, batch_size=64, verbose=0), np.float32)
        w_fit = cw[np.repeat(tr.labels, args.distill_views)]
        loss = tf_keras.losses.KLDivergence()
        print(f"qat: {len(x_fit)} views, towards the float model's probabilities", flush=True)
    else:
        x_fit, y_fit, w_fit = x_tr, tr.labels, cw[tr.labels]
        loss = tf_keras.losses.SparseCategoricalCrossentropy()
    qmodel = tfmot.quantization.keras.quantize_model(flat)
    qmodel.compile(tf_keras.optimizers.Adam(args.lr), loss)
    qmodel.fit(x_fit, y_fit, sample_weight=w_fit, batch_size=32, epochs=args.epochs, verbose=2, shuffle=True)
    rng = np.random.default_rng(args.seed)
    rep = x_tr[rng.permutation(len(x_tr))[: args.representative]]
    conv = tf.lite.TFLiteConverter.from_keras_model(qmodel)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([rep[i : i + 1]] for i in range(len(rep)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    Path(args.out).write_bytes(conv.convert())
    return 0


if __name__ == "__main__":
    sys.exit(main())

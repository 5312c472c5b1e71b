"""Where int8 drifts from float, layer by layer.

``python benchmarks/quant_layer_error.py FLOAT.keras INT8.tflite DATA_DIR [--images 100]``

Runs train photos (``--images``, stratified draw, fixed seed, the model's own preprocessing)
through the float Keras model and the full-int8 flatbuffer, both in the TensorFlow Lite
interpreter with every tensor kept and no delegate, and prints for each layer that has a bias
(the names ``sortcam quantize --bias-correct`` corrects):

- ``rel_err``: RMS of int8 - float over the float activations' standard deviation (accumulated:
  each model runs on its own activations from the input on);
- ``mean_share``: the share of that squared error that a per-channel mean explains, i.e. what a
  bias can undo;
- the logits' RMS error at the end.

docs/model.md ("A full-size teacher and a refinement") reads these figures for the refined student.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Where int8 drifts from float, layer by layer.")
    ap.add_argument("float_model")
    ap.add_argument("int8_model")
    ap.add_argument("data_dir")
    ap.add_argument("--images", type=int, default=100, help="train photos to run (default 100)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--fit", choices=("crop", "stretch"), help="photo fit (default: the training's)")
    args = ap.parse_args(argv)

    from sortcam.model import bias_correct as bc
    from sortcam.model.quantize import representative_images, train_meta
    from sortcam.model.train import classes_for, load_keras_model

    mp = Path(args.float_model)
    model = load_keras_model(mp)
    fit = args.fit or str(train_meta(mp).get("fit", "crop"))
    classes = classes_for(mp)
    if classes is None:
        from sortcam.model.data import index_dataset

        classes = index_dataset(args.data_dir).classes
    _, h, w, _ = model.input_shape
    x = representative_images(args.data_dir, list(classes), int(h), int(w), fit, args.images, args.seed)
    targets = bc.targets(model)
    keys = {t.key for t in targets}
    fi = bc.float_interpreter(model)
    qi = bc.interpreter(Path(args.int8_model).read_bytes())
    fidx, qidx = bc.tensor_indices(fi, keys), bc.tensor_indices(qi, keys)
    found = [t for t in targets if t.key in fidx and t.key in qidx]
    if not found:
        print("no layer of the float model can be found in the int8 graph", file=sys.stderr)
        return 1
    se = {t.key: 0.0 for t in found}
    var = {t.key: 0.0 for t in found}
    ch_sum: dict[str, np.ndarray] = {}
    ch_n = {t.key: 0 for t in found}
    for i, outputs in enumerate(bc.paired_outputs(fi, fidx, qi, qidx, [t.key for t in found], x)):
        for k, (f, q) in outputs.items():
            e = q - f
            se[k] += float((e**2).sum())
            var[k] += float(((f - f.mean()) ** 2).sum())
            ch_sum[k] = ch_sum.get(k, 0.0) + e.sum(axis=0)
            ch_n[k] += e.shape[0]
        print(f"\r{i + 1}/{len(x)} photos", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    print(f"{'layer':34s} {'rel_err':>8s} {'mean_share':>10s}")
    for t in found:
        k = t.key
        mean = ch_sum[k] / ch_n[k]
        share = float((mean**2).sum() * ch_n[k] / se[k]) if se[k] else 0.0
        print(f"{k:34s} {np.sqrt(se[k] / max(var[k], 1e-30)):8.4f} {share:10.3f}")
    last = found[-1].key
    n = ch_n[last] * len(ch_sum[last])
    print(f"logits RMS error ({last}): {np.sqrt(se[last] / n):.4f} over {len(x)} train photos")
    return 0


if __name__ == "__main__":
    sys.exit(main())

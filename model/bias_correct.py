"""Layer-wise empirical bias correction for full-int8 PTQ (``sortcam quantize --bias-correct``).

Rounding weights and activations to int8 moves the *mean* of many channels a little, and the
moves add up through the network: on the refined student of 2026-12-02 a per-channel mean error
is about half of the int8 error in the first blocks, and it ends as a bias of the logits towards
one class. Following Nagel et al., "Data-Free Quantization Through Weight Equalization and Bias
Correction" (ICCV 2019), in its empirical form, after one ordinary conversion (the calibration
images set every range, as in plain PTQ) every layer that has a bias is corrected in graph order:

1. run the calibration images through the int8 flatbuffer and through the float model, both in
   the TensorFlow Lite interpreter with every tensor kept and no delegate;
2. take the mean int8 - float error of this layer's output, channel by channel;
3. subtract it from the int32 bias of the op that writes that output (error / bias scale,
   rounded), in the flatbuffer itself.

The errors of a layer depend on the corrections before it, so the layers go one at a time, each
a rewrite of the flatbuffer and one pass over the calibration images (about 1 s for the 84x84
student on 2 cores; 53 layers). Where a ReLU follows the layer, only its linear part shows the
shift: the channel's summed error is divided by the number of positions where the float output
lies inside the ReLU's range (channels with under 5% of such positions are left alone). Only
the calibration images are used, never val. Ranges, weights and the Keras model stay as they
are; only int32 biases change.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

MIN_LINEAR_SHARE = 0.05
"""A channel after a ReLU is corrected only where at least this share of its float outputs lies in
the ReLU's linear range (below it, the estimate of the shift is too noisy)."""


@dataclass
class Target:
    """One layer whose bias moves: the name its output tensor carries in the TFLite graph (the
    ReLU's where one follows) and the ReLU's upper bound (``None``: no ReLU follows)."""

    key: str
    relu_max: float | None


def _walk(model: Any) -> Iterator[Any]:
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from _walk(layer)
        else:
            yield layer


def targets(model: Any) -> list[Target]:
    """The layers with a bias, in graph order (nested models flattened)."""
    from sortcam.model.train import _keras

    keras = _keras()
    layers = list(_walk(model))
    out: list[Target] = []
    for i, layer in enumerate(layers):
        has_bias = (isinstance(layer, keras.layers.BatchNormalization) and layer.center) or (
            isinstance(layer, keras.layers.Dense | keras.layers.Conv2D | keras.layers.DepthwiseConv2D)
            and bool(getattr(layer, "use_bias", False))
        )
        if not has_bias:
            continue
        key, relu_max = layer.name, None
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(nxt, keras.layers.ReLU) and float(getattr(nxt, "negative_slope", 0.0) or 0.0) == 0.0:
            try:
                fed = nxt.input is layer.output
            except (AttributeError, ValueError):
                fed = False
            if fed:
                key = nxt.name
                relu_max = float(nxt.max_value) if nxt.max_value is not None else float("inf")
        out.append(Target(key, relu_max))
    return out


def interpreter(data: bytes) -> Any:
    """A TensorFlow Lite interpreter that keeps every tensor and delegates nothing (a delegate's
    inner tensors are not kept)."""
    from sortcam.model.train import _tf

    tf = _tf()
    with warnings.catch_warnings():  # "tf.lite.Interpreter is deprecated": once per conversion is noise
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        interp = tf.lite.Interpreter(
            model_content=data,
            experimental_preserve_all_tensors=True,
            experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
    interp.allocate_tensors()
    return interp


def tensor_indices(interp: Any, keys: set[str]) -> dict[str, int]:
    """Output tensor of the first op whose output name names a key (Keras layer names carry a
    ``_1``-style call suffix in the graph). Empty when the interpreter cannot list its ops."""
    try:  # a private method of the interpreter (TensorFlow 2.21)
        ops = interp._get_ops_details()
    except AttributeError:
        return {}
    names = {d["index"]: d["name"] for d in interp.get_tensor_details()}
    found: dict[str, int] = {}
    for op in ops:
        if not len(op["outputs"]):
            continue
        t = int(op["outputs"][0])
        parts = [re.sub(r"_\d+$", "", s) for s in names.get(t, "").split(";")[0].split("/")]
        for part in reversed(parts):
            if part in keys:
                found.setdefault(part, t)
                break
    return found


def float_interpreter(model: Any) -> Any:
    """:func:`interpreter` on the Keras model converted to float TFLite (the reference)."""
    from sortcam.model.train import _tf
    from sortcam.runtime import capture_native_output

    tf = _tf()
    with capture_native_output(), contextlib.redirect_stdout(io.StringIO()):  # it prints the saved signature
        return interpreter(bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert()))


def int8_input(interp: Any, x: npt.NDArray[np.float32]) -> npt.NDArray[np.int8]:
    """Float model input ``x`` quantized with the int8 interpreter's input scale and zero point."""
    scale, zero = interp.get_input_details()[0]["quantization"]
    return np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)


def paired_outputs(
    float_interp: Any, fidx: dict[str, int], qi: Any, qidx: dict[str, int], keys: Iterable[str],
    rep: npt.NDArray[np.float32],
) -> Iterator[dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]]]:  # fmt: skip
    """For each image of ``rep``: the float and the dequantized int8 output named by each key, both
    as ``(positions, channels)``."""
    keys = list(keys)
    qdet = {d["index"]: d for d in qi.get_tensor_details()}
    f_in, q_in = float_interp.get_input_details()[0]["index"], qi.get_input_details()[0]["index"]
    for i in range(len(rep)):
        float_interp.set_tensor(f_in, rep[i : i + 1])
        float_interp.invoke()
        qi.set_tensor(q_in, int8_input(qi, rep[i : i + 1]))
        qi.invoke()
        out = {}
        for k in keys:
            f = float_interp.get_tensor(fidx[k]).astype(np.float64)
            scale, zero = qdet[qidx[k]]["quantization"]
            q = (qi.get_tensor(qidx[k]).astype(np.float64) - zero) * scale
            out[k] = (f.reshape(-1, f.shape[-1]), q.reshape(-1, q.shape[-1]))
        yield out


def channel_errors(
    float_interp: Any, fidx: dict[str, int], data: bytes, keys: list[str], relu_max: dict[str, float | None],
    rep: npt.NDArray[np.float32], logits_key: str | None,
) -> tuple[dict[str, npt.NDArray[np.float64]], float]:  # fmt: skip
    """Per-channel mean int8 - float error of the outputs named ``keys`` over ``rep`` (after a ReLU:
    the summed error over the linear positions, NaN for channels under MIN_LINEAR_SHARE), and the
    RMS error of the logits (NaN without ``logits_key``)."""
    qi = interpreter(data)
    wanted = set(keys) | ({logits_key} if logits_key else set())
    qidx = tensor_indices(qi, wanted)
    sums: dict[str, Any] = {k: 0.0 for k in keys}
    linear: dict[str, Any] = {k: 0 for k in keys}
    total: dict[str, int] = {k: 0 for k in keys}
    se, n = 0.0, 0
    for outputs in paired_outputs(float_interp, fidx, qi, qidx, wanted, rep):
        for k in keys:
            f, q = outputs[k]
            hi = relu_max[k]
            sums[k] = sums[k] + (q - f).sum(axis=0)
            linear[k] = linear[k] + (((f > 0) & (f < hi)).sum(axis=0) if hi is not None else f.shape[0])
            total[k] += f.shape[0]
        if logits_key:
            f, q = outputs[logits_key]
            se += float(((q - f) ** 2).sum())
            n += f.size
    errors = {}
    for k in keys:
        share = np.asarray(linear[k], np.float64) / max(total[k], 1)
        errors[k] = np.where(share >= MIN_LINEAR_SHARE, sums[k] / np.maximum(linear[k], 1), np.nan)
    return errors, (float(np.sqrt(se / n)) if n else float("nan"))


def _bias_writer(data: bytes, qidx: dict[str, int]) -> tuple[Any, dict[str, tuple[Any, Any]]]:
    """The flatbuffer as an object tree, and for each key the int32 bias of the op that writes its
    tensor (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED; absent when no such op writes it) with its
    scale per channel."""
    from tensorflow.lite.tools import flatbuffer_utils

    obj = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    graph = obj.subgraphs[0]
    producer = {int(op.outputs[0]): op for op in graph.operators if op.outputs is not None and len(op.outputs)}
    biases: dict[str, tuple[Any, Any]] = {}
    for key, index in qidx.items():
        op = producer.get(index)
        if op is None or op.inputs is None or len(op.inputs) < 3 or int(op.inputs[2]) < 0:
            continue
        bias = graph.tensors[int(op.inputs[2])]
        buffer = obj.buffers[bias.buffer]
        if bias.type != 2 or buffer.data is None or bias.quantization is None:  # 2: TensorType.INT32
            continue
        scale = np.asarray(bias.quantization.scale, np.float64)
        if scale.size == 0 or not np.all(scale > 0):
            continue
        biases[key] = (buffer, scale)
    return obj, biases


def convert_layer_bias_corrected(
    model: Any, rep: npt.NDArray[np.float32], plain: bytes,
    progress: Callable[[str], None] = print, max_layers: int | None = None, keep_plain_if_worse: bool = True,
) -> tuple[bytes, dict[str, Any]] | None:  # fmt: skip
    """Starting from ``plain``, the model's plain PTQ flatbuffer (calibrated on ``rep``), correct
    every layer's int32 bias in the flatbuffer, in graph order (module
    docstring; ``max_layers``: only the first that many, the ones that matter most), and return the
    corrected full-int8 flatbuffer with what was done, or ``None`` when no layer's output and bias
    can be found in the int8 graph. If the corrected model's logits sit further from the float
    ones than plain PTQ's on the calibration images, plain PTQ's flatbuffer is returned (and
    ``kept_plain`` says so) unless ``keep_plain_if_worse`` is false. Also ``None`` where this
    TensorFlow lacks ``tensorflow.lite.tools.flatbuffer_utils`` (the flatbuffer cannot be edited)."""
    try:
        from tensorflow.lite.tools import flatbuffer_utils
    except ImportError:
        return None

    all_targets = targets(model)
    if not all_targets:
        return None
    keys = {t.key for t in all_targets}
    float_interp = float_interpreter(model)
    fidx = tensor_indices(float_interp, keys)
    qidx = tensor_indices(interpreter(plain), keys)
    obj, biases = _bias_writer(plain, {k: v for k, v in qidx.items() if k in fidx})
    found = [t for t in all_targets if t.key in biases]
    if not found:
        return None
    logits_key = found[-1].key if found[-1].relu_max is None and found[-1] is all_targets[-1] else None
    relu_max = {t.key: t.relu_max for t in found}
    available = len(found)
    if max_layers is not None:
        found = found[: max(0, max_layers)]
    _, rmse_before = channel_errors(float_interp, fidx, plain, [], relu_max, rep, logits_key)
    data = plain
    for i, t in enumerate(found):
        errors, rmse = channel_errors(float_interp, fidx, data, [t.key], relu_max, rep, logits_key)
        buffer, scale = biases[t.key]
        e = np.nan_to_num(errors[t.key], nan=0.0)
        old = np.frombuffer(np.asarray(buffer.data, np.uint8).tobytes(), "<i4").astype(np.int64)
        step = np.round(e / np.broadcast_to(scale, e.shape)).astype(np.int64)
        new = np.clip(old - step, -(2**31), 2**31 - 1).astype("<i4")
        buffer.data = np.frombuffer(new.tobytes(), np.uint8).copy()
        data = bytes(flatbuffer_utils.convert_object_to_bytearray(obj))
        progress(
            f"bias correction: layer {i + 1}/{len(found)} {t.key}: mean |shift| {float(np.abs(e).mean()):.4f}"
            + (f", logit RMS error so far {rmse:.4f}" if logits_key else "")
        )
    _, rmse_after = channel_errors(float_interp, fidx, data, [], relu_max, rep, logits_key)
    kept_plain = keep_plain_if_worse and bool(logits_key) and rmse_after > rmse_before
    info: dict[str, Any] = {
        "layers": len(found),
        "layers_found": available,
        "layers_without_bias_output": len(all_targets) - available,
        "images": int(len(rep)),
        "logit_rms_error_before": round(rmse_before, 4) if logits_key else None,
        "logit_rms_error_after": round(rmse_after, 4) if logits_key else None,
        "kept_plain": kept_plain,
        "what": "one conversion, then each layer's int32 bias, in graph order, moved against the mean "
        "int8 - float error of its output channels on the calibration images (float reference: the "
        "Keras model)",
    }
    return (plain if kept_plain else data), info

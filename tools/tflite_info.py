"""Read a ``.tflite`` flatbuffer without TensorFlow: ops, tensor types, MAC count.

Uses the schema bindings that ship with the ``tflite-micro`` package, so the runtime
install (tools, host, simulator) can inspect models. Everything here is read-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sortcam.errors import DependencyError, ModelError
from sortcam.runtime import read_model


def _schema() -> Any:
    try:
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise DependencyError(f"the tflite-micro package is needed to read .tflite files: {exc}") from None
    return schema


# TensorType enum of the TFLite schema, as names.
_TENSOR_TYPES = {
    0: "float32",
    1: "float16",
    2: "int32",
    3: "uint8",
    4: "int64",
    5: "string",
    6: "bool",
    7: "int16",
    8: "complex64",
    9: "int8",
    10: "float64",
    11: "complex128",
    12: "uint64",
    13: "resource",
    14: "variant",
    15: "uint32",
    16: "uint16",
    17: "int4",
}


@dataclass(frozen=True)
class OpUse:
    """One operator code the model uses: builtin name (e.g. ``CONV_2D``) and its version."""

    name: str
    version: int
    count: int
    custom: bool = False


@dataclass
class TfliteInfo:
    """What export, quantize and the benchmark need to know about a model."""

    size_bytes: int
    ops: list[OpUse]
    input_type: str
    output_type: str
    input_shape: list[int]
    output_shape: list[int]
    tensor_types: dict[str, int] = field(default_factory=dict)
    """How many tensors of each type (``int8``, ``int32``, ``float32``...)."""
    float_weight_tensors: int = 0
    """Constant float32 tensors (weights left in float: a float or hybrid model)."""
    macs: int = 0

    @property
    def op_names(self) -> list[str]:
        """Distinct builtin op names, sorted."""
        return sorted({o.name for o in self.ops})

    @property
    def is_full_int8(self) -> bool:
        """int8 in, int8 out, and no float tensors anywhere."""
        return (
            self.input_type == "int8"
            and self.output_type == "int8"
            and self.tensor_types.get("float32", 0) == 0
            and self.float_weight_tensors == 0
        )

    def quantization_problem(self) -> str | None:
        """``None`` for a full-int8 model, else why it is not (float, hybrid, mixed)."""
        if self.is_full_int8:
            return None
        if self.input_type == "float32" and self.float_weight_tensors == 0 and self.tensor_types.get("int8", 0):
            return (
                "it has int8 weights but float32 input/output and float activations (a hybrid, "
                "dynamic-range model); TFLM and the ESP32 need full int8: quantize with a representative set"
            )
        if self.input_type == "float32" or self.output_type == "float32":
            kind = "hybrid" if self.tensor_types.get("int8", 0) else "float"
            return (
                f"it is a {kind} model (input {self.input_type}, output {self.output_type}); "
                "the firmware needs full int8 with int8 input and output: run 'sortcam quantize'"
            )
        return (
            f"it still holds {self.tensor_types.get('float32', 0)} float32 tensor(s); "
            "the firmware needs every tensor in int8 (full-integer quantization)"
        )


def _op_name(schema: Any, code: int) -> str:
    for name, value in vars(schema.BuiltinOperator).items():
        if not name.startswith("_") and value == code:
            return str(name)
    return f"BUILTIN_{code}"


def read_info(model: bytes | str | Path, name: str | None = None) -> TfliteInfo:
    """Parse a model (bytes or path). One-line :class:`ModelError` when it is not a valid flatbuffer."""
    data, name = read_model(model, name)
    schema = _schema()
    try:
        return _parse(schema, data)
    except ModelError:
        raise
    except Exception as exc:  # flatbuffers raises struct.error / IndexError on cut files
        raise ModelError(
            f"{name} is truncated or corrupt: cannot parse the flatbuffer ({type(exc).__name__})"
        ) from None


def _parse(schema: Any, data: bytes) -> TfliteInfo:
    m = schema.Model.GetRootAsModel(data, 0)
    codes: list[tuple[str, int, bool]] = []
    for i in range(m.OperatorCodesLength()):
        oc = m.OperatorCodes(i)
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        custom = code == schema.BuiltinOperator.CUSTOM
        label = oc.CustomCode().decode() if custom and oc.CustomCode() else _op_name(schema, code)
        codes.append((label, int(oc.Version()), custom))
    if m.SubgraphsLength() < 1:
        raise ModelError("model has no subgraph")
    sg = m.Subgraphs(0)
    counts = [0] * len(codes)
    tensor_types: dict[str, int] = {}
    float_weights = 0
    shapes: list[list[int]] = []
    for t in range(sg.TensorsLength()):
        tensor = sg.Tensors(t)
        tname = _TENSOR_TYPES.get(int(tensor.Type()), str(tensor.Type()))
        tensor_types[tname] = tensor_types.get(tname, 0) + 1
        shape = [int(v) for v in tensor.ShapeAsNumpy()] if tensor.ShapeLength() else []
        shapes.append(shape)
        buf = m.Buffers(tensor.Buffer()) if tensor.Buffer() < m.BuffersLength() else None
        if tname == "float32" and buf is not None and buf.DataLength() > 0:
            float_weights += 1
    macs = 0
    for o in range(sg.OperatorsLength()):
        op = sg.Operators(o)
        idx = int(op.OpcodeIndex())
        if idx >= len(codes):
            raise ModelError(f"operator {o} refers to missing operator code {idx}")
        counts[idx] += 1
        ins = [int(v) for v in op.InputsAsNumpy()] if op.InputsLength() else []
        outs = [int(v) for v in op.OutputsAsNumpy()] if op.OutputsLength() else []
        macs += _op_macs(codes[idx][0], [shapes[i] if i >= 0 else [] for i in ins], [shapes[i] for i in outs])
    in_t = sg.Tensors(int(sg.Inputs(0)))
    out_t = sg.Tensors(int(sg.Outputs(0)))
    ops = [OpUse(n, v, c, cu) for (n, v, cu), c in zip(codes, counts, strict=True) if c]
    return TfliteInfo(
        size_bytes=len(data),
        ops=ops,
        input_type=_TENSOR_TYPES.get(int(in_t.Type()), "?"),
        output_type=_TENSOR_TYPES.get(int(out_t.Type()), "?"),
        input_shape=[int(v) for v in in_t.ShapeAsNumpy()],
        output_shape=[int(v) for v in out_t.ShapeAsNumpy()],
        tensor_types=tensor_types,
        float_weight_tensors=float_weights,
        macs=macs,
    )


def _prod(values: list[int]) -> int:
    n = 1
    for v in values:
        n *= max(int(v), 1)
    return n


def _op_macs(op: str, ins: list[list[int]], outs: list[list[int]]) -> int:
    """Multiply-accumulates of one op at batch 1 (convolutions and dense layers only)."""
    if not outs or not outs[0]:
        return 0
    out = outs[0]
    if op == "CONV_2D" and len(ins) > 1 and len(ins[1]) == 4:
        _, kh, kw, cin = ins[1]
        return _prod(out[1:]) * kh * kw * cin
    if op == "DEPTHWISE_CONV_2D" and len(ins) > 1 and len(ins[1]) == 4:
        _, kh, kw, _ = ins[1]
        return _prod(out[1:]) * kh * kw
    if op == "FULLY_CONNECTED" and len(ins) > 1 and len(ins[1]) == 2:
        units, features = ins[1]
        return units * features * max(_prod(out) // max(units, 1), 1)
    return 0

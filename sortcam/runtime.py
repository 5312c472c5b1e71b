"""Run a full-int8 ``.tflite`` with the TFLM Python runtime (``tflite-micro``).

These are the reference kernels of the TensorFlow Lite Micro the firmware runs, so
what host-side tools measure here (outputs, arena bytes) is what the chip computes,
up to ESP-NN's optimised kernels. No TensorFlow needed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sortcam.errors import DependencyError, ModelError, first_line

TFLITE_IDENTIFIER = b"TFL3"
ALLOCATOR_TAG = "[RecordingMicroAllocator]"
"""How each line of the TFLM runtime's ``print_allocations`` report starts."""


def _runtime() -> Any:
    try:
        from tflite_micro import runtime
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise DependencyError(f"the TFLM runtime is not installed (pip install tflite-micro): {exc}") from None
    return runtime


@contextlib.contextmanager
def capture_native_output(keep: Callable[[str], bool] | None = None) -> Iterator[list[str]]:
    """Capture what C++ code writes to file descriptors 1 and 2 (``print_allocations``).

    The TFLM runtime writes its reports from C++ straight to the process's stdout or
    stderr (it differs between builds), bypassing ``sys.stdout``; this collects both
    (stdout's text, then stderr's) as one string appended to the yielded list.

    The redirection is process-wide, so another thread's output in that window would be
    caught too. With ``keep``, only lines for which ``keep(line)`` is true are collected;
    every other line is written back to the descriptor it was written to, so nothing
    another thread printed meanwhile is lost.
    """
    out: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile(mode="w+b") as tmp1, tempfile.TemporaryFile(mode="w+b") as tmp2:
        os.dup2(tmp1.fileno(), 1)
        os.dup2(tmp2.fileno(), 2)
        try:
            yield out
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            collected: list[str] = []
            for fd, tmp in ((1, tmp1), (2, tmp2)):
                tmp.seek(0)
                back: list[str] = []
                for line in tmp.read().decode("utf-8", "replace").splitlines(keepends=True):
                    (collected if keep is None or keep(line) else back).append(line)
                if back:
                    os.write(fd, "".join(back).encode("utf-8", "replace"))
            out.append("".join(collected))


@dataclass(frozen=True)
class Quant:
    scale: float
    zero_point: int


def check_tflite_bytes(data: bytes, name: str = "model") -> None:
    """Cheap structural check so a truncated or foreign file gets a one-line error."""
    if len(data) < 16 or data[4:8] != TFLITE_IDENTIFIER:
        raise ModelError(f"{name} is not a TFLite flatbuffer (missing 'TFL3' identifier)")
    root = int.from_bytes(data[0:4], "little")
    if root <= 0 or root >= len(data):
        raise ModelError(f"{name} is truncated or corrupt (root offset {root} past {len(data)} bytes)")


def read_model(model: bytes | str | Path, name: str | None = None) -> tuple[bytes, str]:
    """A model's bytes (from bytes or a path) and a name for messages, checked to be a TFLite file."""
    if isinstance(model, (str, Path)):
        path = Path(model)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ModelError(f"model not found: {path}") from None
        except OSError as exc:
            raise ModelError(f"cannot read model {path}: {exc}") from None
        name = name or str(path)
    else:
        data = bytes(model)
        name = name or "model"
    check_tflite_bytes(data, name)
    return data, name


class Int8Classifier:
    """A full-int8 classifier in the TFLM runtime: int8 ``(1, H, W, 3)`` in, int8 logits or probabilities out."""

    def __init__(self, model: bytes | str | Path, arena_size: int | None = None, name: str | None = None) -> None:
        data, name = read_model(model, name)
        self.model_bytes = data
        self.name = name
        runtime = _runtime()
        try:
            self._interp = runtime.Interpreter.from_bytes(data, arena_size=arena_size)
            in_d = self._interp.get_input_details(0)
            out_d = self._interp.get_output_details(0)
        except Exception as exc:  # the runtime raises RuntimeError, struct.error, ValueError...
            first = first_line(exc, None)
            raise ModelError(f"TFLM cannot load {name} (truncated or unsupported model?): {first}") from None
        if in_d["dtype"] != np.int8 or out_d["dtype"] != np.int8:
            raise ModelError(
                f"{name} is not a full-int8 model (input {np.dtype(in_d['dtype']).name}, "
                f"output {np.dtype(out_d['dtype']).name}); run 'sortcam quantize'"
            )
        self.input_shape: tuple[int, ...] = tuple(int(v) for v in in_d["shape"])
        self.output_shape: tuple[int, ...] = tuple(int(v) for v in out_d["shape"])
        iq, oq = in_d["quantization_parameters"], out_d["quantization_parameters"]
        self.input_quant = Quant(float(iq["scales"][0]), int(iq["zero_points"][0]))
        self.output_quant = Quant(float(oq["scales"][0]), int(oq["zero_points"][0]))

    @property
    def num_classes(self) -> int:
        return int(self.output_shape[-1])

    def invoke_int8(self, x: npt.NDArray[np.int8]) -> npt.NDArray[np.int8]:
        """One inference on an ``(H, W, 3)`` or ``(1, H, W, 3)`` int8 input; raw int8 output."""
        arr = np.ascontiguousarray(x, dtype=np.int8).reshape(self.input_shape)
        self._interp.set_input(arr, 0)
        try:
            self._interp.invoke()
        except RuntimeError as exc:
            raise ModelError(f"TFLM invoke failed on {self.name}: {exc}") from None
        return np.array(self._interp.get_output(0), dtype=np.int8).reshape(-1)

    def dequantize(self, q: npt.NDArray[np.int8]) -> npt.NDArray[np.float32]:
        """Output int8 to float with the output tensor's own scale and zero point."""
        return ((q.astype(np.int32) - self.output_quant.zero_point) * self.output_quant.scale).astype(np.float32)

    def predict(self, x: npt.NDArray[np.int8]) -> npt.NDArray[np.float32]:
        """Dequantised output of one inference (probabilities when the model ends in softmax)."""
        return self.dequantize(self.invoke_int8(x))

    def arena_used_bytes(self) -> int:
        """Arena bytes the runtime reports after an invoke (parsed from ``print_allocations``).

        Safe next to other threads: only the allocator's report lines are taken; anything
        else written to stdout or stderr meanwhile is passed through.
        """
        with capture_native_output(keep=lambda line: line.startswith(ALLOCATOR_TAG)) as out:
            self._interp.print_allocations()
        return parse_arena_used(out[0])


def parse_arena_used(report: str) -> int:
    """Total arena bytes from a ``print_allocations`` report."""
    for line in report.splitlines():
        if f"{ALLOCATOR_TAG} Arena allocation total" in line:
            return int(line.rsplit(" ", 2)[-2])
    raise ModelError("could not read arena use from the TFLM runtime report")


def measure_arena(model: bytes, verify: bool = True) -> int:
    """Tensor-arena bytes the model needs in the TFLM runtime, rounded up to 16.

    Loads the model with a generous arena, invokes it once and reads the allocator's
    total (``print_allocations``). With ``verify`` a child process then loads and
    invokes the model with exactly that arena. Probing smaller arenas in this
    process is not safe: some too-small sizes crash the TFLM Python runtime
    (segmentation fault after "Failed to allocate tail memory") instead of failing.
    """
    check_tflite_bytes(model)
    size = max(len(model) * 4, 1 << 20)
    with capture_native_output():
        clf = Int8Classifier(model, arena_size=size)
        clf.invoke_int8(np.zeros(clf.input_shape, np.int8))
    used = clf.arena_used_bytes()
    arena = -(-used // 16) * 16
    if not verify:
        return arena
    code = (
        "import sys, numpy as np\n"
        "from sortcam.runtime import Int8Classifier\n"
        "c = Int8Classifier(open(sys.argv[1], 'rb').read(), arena_size=int(sys.argv[2]))\n"
        "c.invoke_int8(np.zeros(c.input_shape, np.int8))\n"
    )
    with tempfile.NamedTemporaryFile(suffix=".tflite") as tmp:
        tmp.write(model)
        tmp.flush()
        for _ in range(8):
            proc = subprocess.run([sys.executable, "-c", code, tmp.name, str(arena)], capture_output=True)
            if proc.returncode == 0:
                return arena
            arena += 1024
    raise ModelError(f"the model does not run in the TFLM runtime with the arena it reports ({used} bytes + 8 KiB)")

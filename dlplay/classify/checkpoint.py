"""Keep a trained model: checkpoints (save / safe load), and exports to ONNX and TorchScript.

A checkpoint is what ``torch.save`` writes (a zip archive) holding only plain data: the format
name and version, the spec and config as JSON text, the run record as JSON text, the input
normalisation, the class names and the ``state_dict``. Loading never runs code from the file:
the size is limited first, the archive is checked, ``torch.load(weights_only=True)`` refuses any
Python object that is not a tensor or plain data, and the spec, the parameter names, shapes and
dtypes must all match before a model is built from it. Every rejection is a UserError saying why.
"""
from __future__ import annotations

import io
import math
import pickle
import time
import warnings
import zipfile
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from dlplay.classify.runs import RunRecord
from dlplay.errors import UserError
from dlplay.i18n import Term
from dlplay.nn.model import Net, build_model, layer_summary
from dlplay.nn.spec import ModelSpec, TrainConfig
from dlplay.run.status import Status

FORMAT = "dlplay-checkpoint"
GAN_FORMAT = "dlplay-gan-checkpoint"  # dlplay.gan.mnist's checkpoints (Generate page): named when uploaded here
VERSION = 1
MAX_CHECKPOINT_BYTES = 64 * 2**20
MAX_ARCHIVE_ENTRIES = 4096
KEYS = {"format", "version", "spec", "config", "run", "normalization", "classes", "state_dict"}


@dataclass(frozen=True)
class Checkpoint:
    """A validated checkpoint: the model's description, settings, weights and the run it came from."""

    spec: ModelSpec
    config: TrainConfig
    state_dict: dict[str, torch.Tensor]
    run: RunRecord | None
    mean: float
    std: float
    classes: tuple[str, ...]

    def model(self, device: str | torch.device = "cpu") -> Net:
        """A fresh network (eval mode) with these weights."""
        net = build_model(self.spec)
        net.load_state_dict(self.state_dict, strict=True)
        return net.to(device).eval()


_DIGITS = tuple(str(d) for d in range(10))  # the default class names "0".."9"


def save_checkpoint(
    model: nn.Module,
    spec: ModelSpec,
    config: TrainConfig,
    *,
    run: RunRecord | None = None,
    mean: float = 0.1307,
    std: float = 0.3081,
    classes: tuple[str, ...] | list[str] = _DIGITS,
) -> bytes:
    """The bytes of a checkpoint file for ``model`` (weights copied to the CPU)."""
    state = {k: v.detach().to("cpu").clone(memory_format=torch.contiguous_format) for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "spec": spec.to_json(),
        "config": config.to_json(),
        "run": run.to_json() if run is not None else "",
        "normalization": {"mean": float(mean), "std": float(std)},
        "classes": [str(c) for c in classes],
        "state_dict": state,
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def checkpoint_from_session(session: Any, run: RunRecord | None = None) -> bytes:
    """Checkpoint bytes of a run's current weights (a RunHandle: a consistent copy, safe while training)."""
    info = session.dataset_info
    model = session.model_copy("cpu")
    return save_checkpoint(model, session.spec, session.config, run=run, mean=info.mean, std=info.std,
                           classes=tuple(info.classes))


def is_torchscript_archive(entries: list[zipfile.ZipInfo]) -> bool:
    """A ``torch.jit.save`` zip (the TorchScript export): it holds compiled code (``<name>/code/``) and
    ``constants.pkl``, which a ``torch.save`` checkpoint never has. Only the names are read."""
    names = [e.filename for e in entries]
    return any("/code/" in n or n.startswith("code/") for n in names) and any(n.endswith("constants.pkl") for n in names)


def _check_archive(data: bytes, max_bytes: int) -> None:
    """torch.save's zip layout, and no entry that would inflate beyond the size limit."""
    if not data.startswith(b"PK\x03\x04"):
        raise UserError("eval.ckpt_not_checkpoint")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
        raise UserError("eval.ckpt_damaged") from exc
    if len(entries) > MAX_ARCHIVE_ENTRIES or sum(e.file_size for e in entries) > max_bytes:
        raise UserError("eval.ckpt_too_large", size_mb=len(data) / 2**20, limit_mb=max_bytes / 2**20)
    if is_torchscript_archive(entries):
        raise UserError("eval.ckpt_torchscript", torchscript=Term("eval.download_torchscript"), loader="torch.jit.load",
                        checkpoint=Term("eval.download_ckpt"))
    if not any(e.filename.endswith("data.pkl") for e in entries):
        raise UserError("eval.ckpt_not_checkpoint")


def _torch_load(data: bytes) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower() or "unsupported global" in str(exc).lower():
            raise UserError("eval.ckpt_unsafe") from exc
        raise UserError("eval.ckpt_damaged") from exc
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise UserError("eval.ckpt_damaged") from exc


def load_checkpoint(data: bytes, max_bytes: int = MAX_CHECKPOINT_BYTES) -> Checkpoint:
    """Validate and read checkpoint bytes (an upload); raises UserError for anything else."""
    if not isinstance(data, (bytes, bytearray)) or len(data) == 0:
        raise UserError("eval.ckpt_empty")
    if len(data) > max_bytes:
        raise UserError("eval.ckpt_too_large", size_mb=len(data) / 2**20, limit_mb=max_bytes / 2**20)
    data = bytes(data)
    _check_archive(data, max_bytes)
    obj = _torch_load(data)
    if isinstance(obj, dict) and obj.get("format") == GAN_FORMAT:
        raise UserError("eval.ckpt_gan", generate=Term("nav.generate"), digits=Term("generate.mode_digits"),
                        load=Term("generate.upload_ckpt"))
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise UserError("eval.ckpt_not_checkpoint")
    version = obj.get("version")
    if not isinstance(version, int) or version < 1:
        raise UserError("eval.ckpt_not_checkpoint")
    if version > VERSION:
        raise UserError("eval.ckpt_newer", version=version)
    if not set(obj) <= KEYS or "state_dict" not in obj:
        raise UserError("eval.ckpt_not_checkpoint")
    try:
        # not checked to be strings here: from_json turns a missing or non-string value into a UserError
        spec = ModelSpec.from_json(cast(str, obj.get("spec")))
        config = TrainConfig.from_json(cast(str, obj.get("config")))
    except UserError as exc:
        raise UserError("eval.ckpt_bad_spec", reason=exc.message("en")) from exc
    run = None
    if obj.get("run"):
        try:
            run = RunRecord.from_json(obj["run"])
        except Exception as exc:  # noqa: BLE001
            raise UserError("eval.ckpt_bad_spec", reason="run record") from exc
    norm = obj.get("normalization") or {}
    mean, std = norm.get("mean", 0.1307), norm.get("std", 0.3081)
    if not all(isinstance(v, float) and math.isfinite(v) for v in (mean, std)) or std <= 0:
        raise UserError("eval.ckpt_not_checkpoint")
    classes = obj.get("classes") or [str(i) for i in range(spec.num_classes)]
    if not isinstance(classes, list) or len(classes) != spec.num_classes or not all(isinstance(c, str) for c in classes):
        raise UserError("eval.ckpt_not_checkpoint")
    state = _check_state_dict(obj["state_dict"], spec, len(data))
    return Checkpoint(spec, config, state, run, float(mean), float(std), tuple(classes))


def _check_state_dict(state: Any, spec: ModelSpec, size: int) -> dict[str, torch.Tensor]:
    """Names, shapes and dtypes must be exactly those of a network built from ``spec``."""
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise UserError("eval.ckpt_not_checkpoint")
    # A spec whose weights could not fit in the file cannot match it: refuse before building it.
    n_params = sum(row.params for row in layer_summary(spec))
    if n_params * 4 > size:
        raise UserError("eval.ckpt_size_mismatch", params=n_params)
    return match_state_dict(state, build_model(spec).state_dict())


def match_state_dict(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with exactly ``expected``'s names, shapes and dtypes, and finite floats (UserError otherwise),
    contiguous, in ``expected``'s order. Every network a checkpoint loads into is checked by it."""
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    if missing or extra:
        raise UserError("eval.ckpt_keys_mismatch", missing=", ".join(missing[:5]) or "—", extra=", ".join(extra[:5]) or "—")
    for name, ref in expected.items():
        got = state[name]
        if tuple(got.shape) != tuple(ref.shape):
            raise UserError("eval.ckpt_shape_mismatch", name=name, expected=list(ref.shape), got=list(got.shape))
        if got.dtype != ref.dtype:
            raise UserError("eval.ckpt_dtype_mismatch", name=name, expected=str(ref.dtype), got=str(got.dtype))
        if got.is_floating_point() and not torch.isfinite(got).all():
            raise UserError("eval.ckpt_non_finite", name=name)
    return {k: state[k].contiguous() for k in expected}


def usable_config(config: TrainConfig) -> TrainConfig:
    """The config with ``device="auto"`` when it asks for CUDA on a machine without it."""
    if config.device == "cuda" and not torch.cuda.is_available():
        return config.with_changes(device="auto")
    return config


def load_into_session(session: Any, ckpt: Checkpoint) -> Any:
    """Put a checkpoint's weights into a fresh (never started) TrainingSession and mark it done.

    The session's metrics get the checkpoint's epoch records and loss curve, so the Train page
    shows how the model was trained; Draw, Inside and Evaluate can use it at once.
    """
    if session.spec != ckpt.spec:
        raise UserError("eval.ckpt_bad_spec", reason="spec")
    with session.model_lock:
        session.model.load_state_dict({k: v.to(session.device) for k, v in ckpt.state_dict.items()}, strict=True)
        session.model.eval()
    run = ckpt.run
    steps = 0
    if run is not None:
        for step, value in zip(run.loss_steps, run.loss_values):
            session.metrics.append_losses(step, [value])
        for record in run.epochs:
            session.metrics.add_epoch(record)
        for step, lr in run.lr_changes:
            session.metrics.add_lr_change(step, lr)
        steps = run.steps
    now = time.time()
    session.started_at = session.finished_at = now
    session.metrics.update_progress(
        status=Status.DONE,
        message="eval.ckpt_msg_loaded",
        epoch=len(run.epochs) if run else 0,
        global_step=steps,
    )
    return session


# ------------------------------------------------------------------ exports

class PixelModel(nn.Module):
    """The network with its input normalisation built in: pixels in [0, 1], [B, 1, 28, 28] -> logits."""

    def __init__(self, net: nn.Module, mean: float, std: float):
        super().__init__()
        self.net = net
        self.mean = float(mean)
        self.std = float(std)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net((pixels - self.mean) / self.std)


def _export_model(model: nn.Module, mean: float, std: float) -> tuple[PixelModel, torch.Tensor]:
    import copy

    net = copy.deepcopy(model).to("cpu").eval()
    wrapped = PixelModel(net, mean, std).eval()
    shape = getattr(getattr(model, "spec", None), "input_shape", (1, 28, 28))
    return wrapped, torch.rand(2, *shape)


# modules torch imports on the exporter's behalf (pinned in requirements.txt, see tests/test_requirements.py)
EXPORT_MODULES: dict[str, tuple[str, ...]] = {"onnx": ("onnx",), "torchscript": ()}


def missing_export_modules(kind: str) -> list[str]:
    """The modules the ``kind`` export needs that cannot be imported here (an empty list: it can run)."""
    import importlib

    missing = []
    for name in EXPORT_MODULES[kind]:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def export_onnx(model: nn.Module, mean: float, std: float) -> bytes:
    """ONNX bytes (opset 17, dynamic batch): input ``pixels`` float [B, 1, 28, 28] in [0, 1], output ``logits``."""
    wrapped, example = _export_model(model, mean, std)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapped, (example,), buf,  # type: ignore[arg-type]  # a file object works; the stubs say path only
            input_names=["pixels"], output_names=["logits"],
            dynamic_axes={"pixels": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17, dynamo=False,
        )
    return buf.getvalue()


def export_torchscript(model: nn.Module, mean: float, std: float) -> bytes:
    """TorchScript bytes (traced): call it with float pixels in [0, 1], [B, 1, 28, 28]; it returns logits."""
    wrapped, example = _export_model(model, mean, std)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(wrapped, example)
        buf = io.BytesIO()
        torch.jit.save(traced, buf)
    return buf.getvalue()


def loading_snippet(kind: str, file_name: str, mean: float = 0.1307, std: float = 0.3081) -> str:
    """Plain-Python code that loads an exported file and classifies one 28x28 image (``kind``: checkpoint, torchscript, onnx)."""
    image = (
        "import numpy as np\n"
        "from PIL import Image\n\n"
        "# a 28x28 grey image, white digit on black, like MNIST\n"
        "pixels = np.asarray(Image.open(\"digit.png\").convert(\"L\").resize((28, 28)), dtype=np.float32) / 255.0\n"
    )
    if kind == "torchscript":
        return (
            "import torch\n" + image +
            f"\nmodel = torch.jit.load(\"{file_name}\")  # normalisation is built in\n"
            "x = torch.from_numpy(pixels).reshape(1, 1, 28, 28)\n"
            "probs = model(x).softmax(dim=1)[0]\n"
            "print(int(probs.argmax()), float(probs.max()))\n"
        )
    if kind == "onnx":
        return (
            "import onnxruntime as ort\n" + image +
            f"\nsession = ort.InferenceSession(\"{file_name}\")  # normalisation is built in\n"
            "logits = session.run([\"logits\"], {\"pixels\": pixels.reshape(1, 1, 28, 28)})[0][0]\n"
            "probs = np.exp(logits - logits.max()); probs /= probs.sum()\n"
            "print(int(probs.argmax()), float(probs.max()))\n"
        )
    return (
        "import json\n\nimport torch\n" + image +
        f"\nckpt = torch.load(\"{file_name}\", weights_only=True)  # plain data and tensors only\n"
        "print(json.loads(ckpt[\"spec\"]))  # the architecture\n"
        "state_dict = ckpt[\"state_dict\"]  # e.g. blocks.0.op.weight [128, 784]\n\n"
        "# with dlplay installed, rebuild the network:\n"
        "from dlplay.classify.checkpoint import load_checkpoint\n"
        f"model = load_checkpoint(open(\"{file_name}\", \"rb\").read()).model()\n"
        f"x = (torch.from_numpy(pixels) - {mean}) / {std}\n"
        "probs = model(x.reshape(1, 1, 28, 28)).softmax(dim=1)[0]\n"
        "print(int(probs.argmax()), float(probs.max()))\n"
    )


def file_stem(spec: ModelSpec, config: TrainConfig) -> str:
    """A file name stem that says what the model is, e.g. ``dlplay-mnist-784-128-10``."""
    from dlplay.classify.runs import architecture_label

    return f"dlplay-{config.dataset}-{architecture_label(spec)}"


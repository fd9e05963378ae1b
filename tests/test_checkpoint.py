"""Checkpoints: save -> load gives the same predictions; every bad upload is refused; exports match PyTorch."""
from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from dlplay.classify.checkpoint import (
    FORMAT,
    PixelModel,
    checkpoint_from_session,
    export_onnx,
    export_torchscript,
    file_stem,
    load_checkpoint,
    load_into_session,
    loading_snippet,
    save_checkpoint,
    usable_config,
)
from dlplay.classify.runs import record_from_session
from dlplay.classify.train import TrainingSession
from dlplay.errors import UserError
from dlplay.nn.model import build_model
from dlplay.nn.spec import LayerSpec, ModelSpec, TrainConfig, dense_spec
from helpers import train_to_end

CONV = ModelSpec(layers=(LayerSpec("conv2d", 4, "relu", kernel=3, padding=1), LayerSpec("maxpool", kernel=2, stride=2),
                         LayerSpec("batchnorm", activation="identity"), LayerSpec("dense", 16, "gelu", dropout=0.2)))


@pytest.fixture(scope="module")
def trained(mnist):
    config = TrainConfig(epochs=1, batch_size=100, train_size=2000, seed=2)
    return train_to_end(mnist, dense_spec([32]), config, timeout=120)


@pytest.fixture(scope="module")
def ckpt_bytes(trained):
    return checkpoint_from_session(trained, run=record_from_session(trained))


def _logits(model, mnist, n=500):
    with torch.no_grad():
        x = mnist.test_images[:n].float().div(255).sub(mnist.info.mean).div(mnist.info.std)
        return model.eval()(x)


def _reason(exc_info) -> str:
    return exc_info.value.key


# ------------------------------------------------------------------ round trip

def test_save_load_round_trip_same_predictions(trained, ckpt_bytes, mnist):
    assert ckpt_bytes[:4] == b"PK\x03\x04"
    ckpt = load_checkpoint(ckpt_bytes)
    assert ckpt.spec == trained.spec
    assert ckpt.config == trained.config
    assert ckpt.mean == pytest.approx(mnist.info.mean)
    assert ckpt.std == pytest.approx(mnist.info.std)
    assert ckpt.classes == tuple(str(d) for d in range(10))
    assert ckpt.run is not None
    assert ckpt.run.steps == 20
    assert ckpt.run.test_acc == trained.snapshot().epochs[-1].test_acc
    before = _logits(trained.model_copy(), mnist)
    after = _logits(ckpt.model(), mnist)
    assert torch.equal(before, after)


def test_a_checkpoint_becomes_a_finished_session(ckpt_bytes, trained, mnist):
    ckpt = load_checkpoint(ckpt_bytes)
    session = TrainingSession(ckpt.spec, ckpt.config, mnist, "cpu")
    load_into_session(session, ckpt)
    assert session.status == "done"
    assert session.evaluate("test") == pytest.approx(trained.evaluate("test"))
    snap = session.snapshot()
    assert snap.epochs == trained.snapshot().epochs
    assert snap.progress.global_step == 20
    assert len(snap.losses) > 0
    assert snap.progress.message == "eval.ckpt_msg_loaded"
    # the session can save it again, unchanged
    again = load_checkpoint(checkpoint_from_session(session))
    assert torch.equal(_logits(again.model(), mnist), _logits(ckpt.model(), mnist))
    other = TrainingSession(dense_spec([8]), ckpt.config, mnist, "cpu")
    with pytest.raises(UserError):
        load_into_session(other, ckpt)


def test_conv_net_round_trip_with_batchnorm_buffers(mnist):
    model = build_model(CONV, seed=0)
    model.train()
    with torch.no_grad():  # move BatchNorm's running statistics away from their defaults
        model(torch.randn(64, 1, 28, 28))
    data = save_checkpoint(model, CONV, TrainConfig())
    loaded = load_checkpoint(data)
    assert loaded.run is None
    assert torch.equal(_logits(model, mnist, 200), _logits(loaded.model(), mnist, 200))
    assert loaded.state_dict["blocks.2.op.num_batches_tracked"].item() == 1


def test_usable_config_falls_back_from_missing_cuda():
    cfg = TrainConfig(device="cuda")
    expected = "cuda" if torch.cuda.is_available() else "auto"
    assert usable_config(cfg).device == expected
    assert usable_config(TrainConfig(device="cpu")).device == "cpu"


def test_file_stem():
    assert file_stem(dense_spec([128]), TrainConfig()) == "dlplay-mnist-784-128-10"


# ------------------------------------------------------------------ bad uploads

class Evil:
    """Unpickling this runs a shell command (that creates a marker file)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def test_malicious_pickle_in_a_torch_file_is_rejected_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    data = _torch_bytes({"format": FORMAT, "version": 1, "state_dict": {}, "spec": Evil(marker)})
    with pytest.raises(UserError) as exc_info:
        load_checkpoint(data)
    assert _reason(exc_info) == "eval.ckpt_unsafe"
    assert "code" in exc_info.value.message("en")
    assert not marker.exists()
    # the same payload really would run if loaded unsafely (so the test can fail)
    pickle.loads(pickle.dumps(Evil(marker)))
    assert marker.exists()


def test_malicious_object_inside_the_state_dict_is_rejected(tmp_path, ckpt_bytes):
    marker = tmp_path / "pwned2"
    obj = torch.load(io.BytesIO(ckpt_bytes), weights_only=True)
    obj["state_dict"]["blocks.0.op.weight"] = Evil(marker)
    with pytest.raises(UserError) as exc_info:
        load_checkpoint(_torch_bytes(obj))
    assert _reason(exc_info) == "eval.ckpt_unsafe"
    assert not marker.exists()


def test_raw_malicious_pickle_is_rejected_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned3"
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        with pytest.raises(UserError) as exc_info:
            load_checkpoint(pickle.dumps(Evil(marker), protocol=protocol))
        assert _reason(exc_info) == "eval.ckpt_not_checkpoint"
    assert not marker.exists()


def test_malicious_pickle_in_a_hand_made_zip_is_rejected(tmp_path):
    marker = tmp_path / "pwned4"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(Evil(marker), protocol=2))
        z.writestr("archive/version", "3\n")
    with pytest.raises(UserError) as exc_info:
        load_checkpoint(buf.getvalue())
    assert _reason(exc_info) in ("eval.ckpt_unsafe", "eval.ckpt_damaged")
    assert not marker.exists()


def _tamper(ckpt_bytes, fn) -> bytes:
    obj = torch.load(io.BytesIO(ckpt_bytes), weights_only=True)
    fn(obj)
    return _torch_bytes(obj)


def test_wrong_shape_state_dict_is_rejected(ckpt_bytes):
    def transpose(obj):
        w = obj["state_dict"]["blocks.0.op.weight"]
        obj["state_dict"]["blocks.0.op.weight"] = w.t().contiguous()

    with pytest.raises(UserError) as exc_info:
        load_checkpoint(_tamper(ckpt_bytes, transpose))
    assert _reason(exc_info) == "eval.ckpt_shape_mismatch"
    message = exc_info.value.message("en")
    assert "blocks.0.op.weight" in message
    assert "[784, 32]" in message
    assert "[32, 784]" in message


def test_weights_of_another_architecture_are_rejected(ckpt_bytes, trained):
    # a spec with more parameters than the file could hold is refused before a model is built
    bigger = _tamper(ckpt_bytes, lambda o: o.update(spec=dense_spec([4096, 4096]).to_json()))
    with pytest.raises(UserError) as exc_info:
        load_checkpoint(bigger)
    assert _reason(exc_info) == "eval.ckpt_size_mismatch"
    # a smaller architecture: the shapes differ
    smaller = _tamper(ckpt_bytes, lambda o: o.update(spec=dense_spec([16]).to_json()))
    with pytest.raises(UserError) as exc_info:
        load_checkpoint(smaller)
    assert _reason(exc_info) == "eval.ckpt_shape_mismatch"
    renamed = _tamper(ckpt_bytes, lambda o: o["state_dict"].update({"extra.weight": torch.zeros(1)}))
    with pytest.raises(UserError) as exc_info:
        load_checkpoint(renamed)
    assert _reason(exc_info) == "eval.ckpt_keys_mismatch"
    assert "extra.weight" in exc_info.value.message()
    doubled = _tamper(ckpt_bytes, lambda o: o["state_dict"].update({k: v.double() for k, v in o["state_dict"].items()}))
    with pytest.raises(UserError) as exc_info:
        load_checkpoint(doubled)
    assert _reason(exc_info) == "eval.ckpt_dtype_mismatch"


def test_non_finite_weights_bad_spec_and_newer_versions_are_rejected(ckpt_bytes):
    cases = {
        "eval.ckpt_non_finite": lambda o: o["state_dict"]["blocks.1.op.bias"].fill_(float("nan")),
        "eval.ckpt_bad_spec": lambda o: o.update(spec='{"layers": [{"kind": "dense", "units": -1}]}'),
        "eval.ckpt_newer": lambda o: o.update(version=99),
        "eval.ckpt_not_checkpoint": lambda o: o.update(format="something-else"),
    }
    for key, fn in cases.items():
        with pytest.raises(UserError) as exc_info:
            load_checkpoint(_tamper(ckpt_bytes, fn))
        assert _reason(exc_info) == key, key
    bad_cfg = _tamper(ckpt_bytes, lambda o: o.update(config='{"optimizer": "magic"}'))
    with pytest.raises(UserError) as exc_info:
        load_checkpoint(bad_cfg)
    assert _reason(exc_info) == "eval.ckpt_bad_spec"
    assert isinstance(exc_info.value.__cause__, UserError)


@pytest.mark.parametrize("cut", [0.5, 0.9, -10])
def test_truncated_files_are_rejected(ckpt_bytes, cut):
    end = int(len(ckpt_bytes) * cut) if cut > 0 else len(ckpt_bytes) + cut
    with pytest.raises(UserError) as exc_info:
        load_checkpoint(ckpt_bytes[:end])
    assert _reason(exc_info) == "eval.ckpt_damaged"


def test_corrupted_bytes_inside_are_rejected(ckpt_bytes):
    data = bytearray(ckpt_bytes)
    start = data.find(b"data.pkl") + 40
    data[start : start + 64] = b"\xff" * 64
    with pytest.raises(UserError):
        load_checkpoint(bytes(data))


def test_non_checkpoint_files_are_rejected(tmp_path):
    png = io.BytesIO()
    Image.new("L", (28, 28)).save(png, format="PNG")
    json_text = b'{"format": "dlplay-checkpoint"}'
    plain_tensor = _torch_bytes(torch.zeros(3))
    plain_dict = _torch_bytes({"weights": torch.zeros(3)})
    other_zip = io.BytesIO()
    with zipfile.ZipFile(other_zip, "w") as z:
        z.writestr("readme.txt", "hello")
    for data in (png.getvalue(), json_text, plain_tensor, plain_dict, other_zip.getvalue(), b"\x00" * 100):
        with pytest.raises(UserError) as exc_info:
            load_checkpoint(data)
        assert _reason(exc_info) == "eval.ckpt_not_checkpoint"
    with pytest.raises(UserError) as exc_info:
        load_checkpoint(b"")
    assert _reason(exc_info) == "eval.ckpt_empty"


def test_size_limit(ckpt_bytes):
    with pytest.raises(UserError) as exc_info:
        load_checkpoint(ckpt_bytes, max_bytes=len(ckpt_bytes) - 1)
    assert _reason(exc_info) == "eval.ckpt_too_large"
    assert load_checkpoint(ckpt_bytes, max_bytes=len(ckpt_bytes)).spec == dense_spec([32])


def test_zip_that_inflates_beyond_the_limit_is_rejected():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", b"\x00" * 5_000_000)
    data = buf.getvalue()
    assert len(data) < 100_000
    with pytest.raises(UserError) as exc_info:
        load_checkpoint(data, max_bytes=1_000_000)
    assert _reason(exc_info) == "eval.ckpt_too_large"


# ------------------------------------------------------------------ exports

def _pixels(mnist, n=64) -> torch.Tensor:
    return mnist.test_images[:n].float().div(255).unsqueeze(1)


@pytest.mark.parametrize("which", ["mlp", "conv"])
def test_onnx_export_matches_pytorch(which, trained, mnist):
    model = trained.model_copy() if which == "mlp" else build_model(CONV, seed=1).eval()
    onnx_bytes = export_onnx(model, mnist.info.mean, mnist.info.std)
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["pixels"]
    for n in (1, 64):  # the batch dimension is dynamic
        pixels = _pixels(mnist, n)
        ours = session.run(["logits"], {"pixels": pixels.numpy()})[0]
        with torch.no_grad():
            ref = _logits(model, mnist, n).numpy()
        np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=1e-4)
        assert (ours.argmax(1) == ref.argmax(1)).all()


@pytest.mark.filterwarnings("ignore:`torch.jit")
def test_torchscript_export_matches_pytorch(trained, mnist):
    model = trained.model_copy()
    ts = torch.jit.load(io.BytesIO(export_torchscript(model, mnist.info.mean, mnist.info.std)))
    with torch.no_grad():
        assert torch.allclose(ts(_pixels(mnist, 100)), _logits(model, mnist, 100), atol=1e-5)
        assert ts(_pixels(mnist, 3)).shape == (3, 10)


def test_pixel_model_builds_in_the_normalisation(trained, mnist):
    model = trained.model_copy()
    wrapped = PixelModel(model, mnist.info.mean, mnist.info.std)
    with torch.no_grad():
        assert torch.allclose(wrapped(_pixels(mnist, 10)), _logits(model, mnist, 10), atol=1e-5)


def test_loading_snippets_run_and_agree(trained, ckpt_bytes, mnist, tmp_path):
    """Each snippet, run as plain Python in a fresh interpreter, classifies a real digit like the model."""
    model = trained.model_copy()
    files = {
        "checkpoint": ("model.pt", ckpt_bytes),
        "torchscript": ("model-ts.pt", export_torchscript(model, mnist.info.mean, mnist.info.std)),
        "onnx": ("model.onnx", export_onnx(model, mnist.info.mean, mnist.info.std)),
    }
    for name, data in files.values():
        (tmp_path / name).write_bytes(data)
    Image.fromarray(mnist.test_images[7].numpy()).save(tmp_path / "digit.png")
    driver = "import contextlib, io\n"
    for kind, (name, _) in files.items():
        code = loading_snippet(kind, name, mnist.info.mean, mnist.info.std)
        driver += (
            f"out = io.StringIO()\nwith contextlib.redirect_stdout(out):\n    exec({code!r}, {{}})\n"
            f"print({kind!r}, out.getvalue().splitlines()[-1])\n"
        )
    env = dict(os.environ, PYTHONPATH=str(os.getcwd()), PYTHONWARNINGS="ignore")
    out = subprocess.run([sys.executable, "-c", driver], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    with torch.no_grad():
        expected = torch.softmax(_logits(model, mnist, 8)[7], 0)
    lines = out.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(files)
    for line in lines:
        _, digit, prob = line.split()
        assert int(digit) == int(expected.argmax())
        assert float(prob) == pytest.approx(float(expected.max()), abs=1e-4)


def test_saving_never_needs_unsafe_loading(ckpt_bytes):
    # every object in a checkpoint loads with weights_only=True (plain data and tensors only)
    obj = torch.load(io.BytesIO(ckpt_bytes), weights_only=True)
    assert set(obj) == {"format", "version", "spec", "config", "run", "normalization", "classes", "state_dict"}


@pytest.mark.filterwarnings("ignore:`torch.jit")
def test_the_apps_own_torchscript_export_is_named_not_called_damaged(trained, mnist, monkeypatch):
    blob = export_torchscript(trained.model_copy(), mnist.info.mean, mnist.info.std)
    unpickled = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: unpickled.append(a))  # recognised by its names alone
    with pytest.raises(UserError) as exc_info:
        load_checkpoint(blob)
    assert _reason(exc_info) == "eval.ckpt_torchscript"
    assert not unpickled
    assert "TorchScript" in str(exc_info.value)
    assert "Checkpoint (.pt)" in str(exc_info.value)
    assert "检查点 (.pt)" in exc_info.value.message("zh")

"""A run as code: the exported PyTorch script, run in a subprocess on the MNIST sample, reproduces the
app's run (same test accuracy, and on the CPU the same weights bit for bit); the notebook executes;
the Keras script compiles (TensorFlow is not installed here, so it is not run)."""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dlplay.export.keras import keras_script
from dlplay.export.notebook import notebook
from dlplay.export.script import pytorch_script
from dlplay.nn.presets import PRESETS
from dlplay.nn.spec import LayerSpec, ModelSpec, TrainConfig, dense_spec
from helpers import train_to_end

RESULT = re.compile(r"TEST ACCURACY (\d\.\d+)")


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", PYTHONPATH="", **extra)  # the script must not need dlplay
    return env


def _run_script(source: str, folder: Path, **env: str) -> subprocess.CompletedProcess:
    path = folder / "dlplay_run.py"
    path.write_text(source, encoding="utf-8")
    return subprocess.run([sys.executable, "-I", str(path)], capture_output=True, text=True, cwd=folder,
                          env=_env(**env), timeout=600)


def _check_reproduces(mnist, spec: ModelSpec, config: TrainConfig, folder: Path, lang: str = "en") -> None:
    session = train_to_end(mnist, spec, config)
    app_acc = session.snapshot().epochs[-1].test_acc
    done = _run_script(pytorch_script(spec, config, lang), folder)
    assert done.returncode == 0, done.stderr[-3000:]
    script_acc = float(RESULT.findall(done.stdout)[-1])
    assert abs(script_acc - app_acc) <= 0.003, (script_acc, app_acc)
    # on the CPU with the same thread count: the same weights, bit for bit
    theirs = torch.load(folder / "model.pt", weights_only=True)
    ours = session.state_dict()
    assert len(theirs) == len(ours)
    for (name, a), b in zip(ours.items(), theirs.values()):
        assert a.shape == b.shape, name
        assert torch.equal(a, b), name
    assert script_acc == app_acc


def test_the_script_of_a_dense_run_reproduces_it_bit_for_bit(mnist, tmp_path):
    """Dropout, a cosine schedule, a validation split, label edits (one relabelled, one dropped), a
    subset: the script's backward pass is written out as the dense engine computes it."""
    spec = dense_spec([48, 24], "relu", dropout=0.2)
    config = TrainConfig(epochs=2, seed=5, batch_size=50, train_size=1500, schedule="cosine", val_share=0.1,
                         label_edits=((3, 1), (7, -1)), lr=2e-3)
    _check_reproduces(mnist, spec, config, tmp_path, lang="zh")


def test_the_script_of_a_convolutional_run_reproduces_it(mnist, tmp_path):
    spec = ModelSpec(layers=(LayerSpec("conv2d", 6, "relu", kernel=3, padding=1), LayerSpec("batchnorm", 1, "identity"),
                             LayerSpec("maxpool", 1, "identity", kernel=2, stride=2),
                             LayerSpec("dense", 16, "tanh", dropout=0.1)), init="he")
    config = TrainConfig(epochs=1, seed=1, train_size=600, optimizer="momentum", lr=0.05, schedule="step")
    _check_reproduces(mnist, spec, config, tmp_path)


def test_the_script_of_a_recurrent_run_reproduces_it(mnist, tmp_path):
    spec = ModelSpec(layers=(LayerSpec("gru", 12, "identity", stack=2, read="all"),), order="columns", init="xavier")
    config = TrainConfig(epochs=1, seed=2, train_size=400, val_share=0.0, optimizer="rmsprop")
    _check_reproduces(mnist, spec, config, tmp_path)


def test_the_notebook_executes_and_gets_the_run_s_accuracy(mnist, tmp_path):
    import nbclient
    import nbformat

    spec, config = dense_spec([32], "sigmoid"), TrainConfig(epochs=1, seed=4, train_size=500, optimizer="sgd", lr=0.5)
    session = train_to_end(mnist, spec, config)
    nb = nbformat.reads(notebook(spec, config, "en"), as_version=4)
    assert [c.cell_type for c in nb.cells[:3]] == ["markdown", "markdown", "code"]
    old = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"  # the kernel inherits the environment
    try:
        nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        if old is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = old
    text = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs)
    assert float(RESULT.findall(text)[-1]) == session.snapshot().epochs[-1].test_acc
    assert (tmp_path / "model.pt").exists()


def test_the_script_says_where_to_put_the_data_when_it_finds_none(tmp_path):
    source = pytorch_script(dense_spec([8]), TrainConfig(epochs=1, dataset="fashion-mnist"), "en")
    assert "DATASET = \"fashion-mnist\"" in source
    assert "MEAN, STD = 0.286, 0.353" in source
    empty = tmp_path / "nothing"
    empty.mkdir()
    done = _run_script(source, tmp_path, DLPLAY_DATA_DIR=str(empty), HOME=str(empty), DLPLAY_CACHE_DIR=str(empty),
                       XDG_CACHE_HOME=str(empty), KERAS_HOME=str(empty))
    if Path("/usr/share/datasets/fashion-mnist").is_dir():  # Debian's package: found there, as dlplay finds it
        assert done.returncode == 0 or "TEST ACCURACY" in done.stdout, done.stderr[-2000:]
    else:
        assert done.returncode != 0
        assert "DLPLAY_DATA_DIR" in done.stderr


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_preset_exports_to_code_that_compiles(lang):
    """The Keras script compiles for every preset (TensorFlow is not installed here: not run) and uses
    the tutorial's Keras layers for the network's kinds."""
    for preset in PRESETS.values():
        for source in (pytorch_script(preset.spec, preset.config, lang), keras_script(preset.spec, preset.config, lang)):
            compile(source, "export.py", "exec")
            ast.parse(source)
    cnn = keras_script(PRESETS["small_cnn"].spec, PRESETS["small_cnn"].config, lang)
    assert "layers.Conv2D(32, 3, strides=1, padding=\"same\"" in cnn
    assert "layers.BatchNormalization(" in cnn
    assert "layers.MaxPooling2D(pool_size=2" in cnn
    assert "layers.Dropout(0.3)" in cnn
    assert "CosineDecay" in cnn
    rnn = ModelSpec(layers=(LayerSpec("lstm", 32, "identity", stack=2),), order="pixels")
    lstm = keras_script(rnn, TrainConfig(), lang)
    assert "layers.Reshape((784, 1))" in lstm
    assert lstm.count("layers.LSTM(32") == 2
    assert "return_sequences=True" in lstm
    assert "return_sequences=False" in lstm
    padded = ModelSpec(layers=(LayerSpec("conv2d", 4, "leaky_relu", kernel=5, padding=1),))
    assert "layers.ZeroPadding2D(1)" in keras_script(padded, TrainConfig(), lang)
    assert "LeakyReLU(negative_slope=0.01)" in keras_script(padded, TrainConfig(), lang)

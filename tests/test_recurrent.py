"""Recurrent layers (plain RNN, LSTM, GRU): reading orders, the spec's JSON, share links, checkpoints
(loaded with weights_only=True), ONNX export checked with onnxruntime, training through the one loop."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dlplay.classify.checkpoint import export_onnx, load_checkpoint, save_checkpoint
from dlplay.classify.probe import Probe
from dlplay.classify.train import TrainingSession
from dlplay.errors import UserError
from dlplay.i18n import translate
from dlplay.nn.layers import ORDERS, sequence_shape, to_sequence
from dlplay.nn.model import build_model
from dlplay.nn.spec import LayerSpec, ModelSpec, TrainConfig
from dlplay.server.share import from_params, to_params

CELLS = ("rnn", "lstm", "gru")


def rec_spec(cell: str, order: str = "rows", read: str = "last", stack: int = 1, hidden: int = 8,
             rnn_act: str = "relu") -> ModelSpec:
    act = rnn_act if cell == "rnn" else "identity"
    return ModelSpec(layers=(LayerSpec(cell, hidden, act, stack=stack, read=read), LayerSpec("dense", 6, "tanh")),
                     order=order)


@pytest.mark.parametrize("order", ORDERS)
def test_reading_orders_are_rows_columns_and_pixels(order):
    x = torch.arange(2 * 1 * 28 * 28, dtype=torch.float32).reshape(2, 1, 28, 28)
    seq = to_sequence(x, order)
    assert tuple(seq.shape[1:]) == sequence_shape((1, 28, 28), order)
    if order == "rows":
        torch.testing.assert_close(seq[1, 5], x[1, 0, 5, :])  # step 5 is the sixth row
    elif order == "columns":
        torch.testing.assert_close(seq[1, 5], x[1, 0, :, 5])  # step 5 is the sixth column
    else:
        assert seq[1, 30, 0] == x[1, 0, 1, 2]  # pixel by pixel, row-major


@pytest.mark.parametrize("cell", CELLS)
def test_model_reads_the_image_as_a_sequence(cell):
    spec = rec_spec(cell, "columns", "all", 2)
    assert spec.shapes()[0] == (28, 8)
    model = build_model(spec, seed=0).eval()
    x = torch.randn(3, 1, 28, 28)
    rnn = model.blocks[0].op.rnn
    out, _ = rnn(x[:, 0].transpose(1, 2))  # the module on the columns by hand
    torch.testing.assert_close(model.blocks[0](x), out)
    assert model(x).shape == (3, 10)


def test_json_share_link_and_validation():
    spec = ModelSpec(layers=(LayerSpec("lstm", 32, "identity", stack=2, read="all"), LayerSpec("gru", 16, "identity"),
                             LayerSpec("dense", 5)), order="pixels")
    assert ModelSpec.from_json(spec.to_json()) == spec
    assert from_params(to_params(spec, TrainConfig())) == (spec, TrainConfig())
    assert "stack" not in ModelSpec().to_json()
    assert "order" not in ModelSpec().to_json()  # old JSON unchanged
    with pytest.raises(UserError) as info:
        ModelSpec(layers=(LayerSpec("rnn", 8, "tanh"),), order="diagonal")
    assert info.value.key == "spec.unknown_order"
    for lang in ("en", "zh"):
        assert "diagonal" in translate(info.value.key, lang, **info.value.params)
    with pytest.raises(UserError) as info:  # an LSTM that reads only its last state gives no sequence to a second one
        ModelSpec(layers=(LayerSpec("lstm", 8, "identity"), LayerSpec("lstm", 8, "identity")))
    assert info.value.key == "spec.sequence_after_dense"
    assert info.value.params["layer"] == 2
    with pytest.raises(UserError) as info:
        ModelSpec(layers=(LayerSpec("rnn", 8, "sigmoid"),))
    assert info.value.key == "spec.kind_activation"
    assert "tanh, relu" in translate(info.value.key, "zh", **info.value.params)


@pytest.mark.parametrize("cell", CELLS)
def test_checkpoint_loads_with_weights_only(cell):
    spec = rec_spec(cell, "pixels", "last", 2)
    model = build_model(spec, seed=3)
    data = save_checkpoint(model, spec, TrainConfig())
    ckpt = load_checkpoint(data)  # torch.load(weights_only=True) inside
    assert ckpt.spec == spec
    x = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(ckpt.model()(x), model.eval()(x))


@pytest.mark.parametrize("cell", CELLS)
def test_onnx_export_matches_pytorch(cell):
    ort = pytest.importorskip("onnxruntime")
    spec = rec_spec(cell, "rows", "all", 2)
    model = build_model(spec, seed=4).eval()
    session = ort.InferenceSession(export_onnx(model, 0.1307, 0.3081))
    pixels = torch.rand(5, 1, 28, 28)  # another batch size than the export's example
    (logits,) = session.run(None, {"pixels": pixels.numpy()})
    with torch.no_grad():
        expected = model((pixels - 0.1307) / 0.3081).numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_training_session_trains_a_recurrent_net_with_the_probe(cell, mnist):
    probe = Probe(every=2, probe_images=8)
    session = TrainingSession(rec_spec(cell, hidden=32, rnn_act="tanh"),
                              TrainConfig(epochs=1, train_size=2048, batch_size=32, lr=3e-3),
                              mnist, "cpu", sync_every=2, callbacks=[probe])
    session.start()
    assert session.join(120)
    assert session.status == "done"
    snap = session.snapshot()
    assert snap.epochs[-1].test_acc > 0.2
    assert snap.epochs[-1].test_loss < 2.1  # learns in 64 steps (chance: 0.1, ln 10 = 2.30)
    probe_snap = probe.snapshot()
    assert probe_snap.layers[0].kind == cell
    assert np.isfinite(probe_snap.values[-1, 0]).any()

"""Presets: each one builds, trains on the real MNIST sample, and shows what its explanation claims."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from dlplay.classify.train import TrainingSession
from dlplay.i18n import translate
from dlplay.nn.model import build_model, count_parameters
from dlplay.nn.presets import DEFAULT_PRESET, PRESETS, Preset
from dlplay.nn.spec import dense_spec

LOCALES = Path(__file__).resolve().parents[1] / "dlplay" / "locales"


def _normalized_batch(mnist, n: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    x = (mnist.train_images[:n].float() / 255.0 - mnist.info.mean) / mnist.info.std
    return x, mnist.train_labels[:n]


def test_registry_structure():
    assert DEFAULT_PRESET in PRESETS
    assert {"tutorial", "deep_sigmoid", "zero_init", "wide_shallow", "narrow_deep", "small_cnn", "high_lr"} <= set(PRESETS)
    for key, preset in PRESETS.items():
        assert isinstance(preset, Preset)
        assert preset.key == key


def test_every_preset_is_explained_in_both_languages():
    catalogs = {lang: json.loads((LOCALES / lang / "presets.json").read_text(encoding="utf-8")) for lang in ("en", "zh")}
    assert set(catalogs["en"]) == set(catalogs["zh"])
    for key in PRESETS:
        for lang in ("en", "zh"):
            for part in ("name", "text"):
                text = catalogs[lang][f"presets.{key}.{part}"]
                assert text.strip()
                assert translate(f"presets.{key}.{part}", lang) == text
            assert len(catalogs[lang][f"presets.{key}.text"]) > 80  # a paragraph, not a label


@pytest.mark.parametrize("key", list(PRESETS))
def test_each_preset_trains_a_few_steps(mnist, key):
    preset = PRESETS[key]
    config = preset.config.with_changes(train_size=3 * preset.config.batch_size, epochs=1)
    session = TrainingSession(preset.spec, config, mnist, "cpu", sync_every=1)
    session.step(2)
    deadline = 60.0
    while session.snapshot().progress.global_step < 2 and deadline > 0 and session.is_alive:
        session.join(0.05)
        deadline -= 0.05
    snap = session.snapshot()
    session.stop()
    assert session.join(30)
    assert snap.progress.global_step == 2
    assert list(snap.steps) == [1, 2]
    assert all(torch.isfinite(torch.tensor(snap.losses)))


def test_high_lr_preset_diverges_within_the_first_epoch(mnist):
    preset = PRESETS["high_lr"]
    session = TrainingSession(preset.spec, preset.config, mnist, "cpu")
    session.start()
    assert session.join(120)
    snap = session.snapshot()
    assert session.status == "diverged"
    assert snap.progress.message == "train.msg_diverged"
    params = dict(snap.progress.message_params)
    # the loop stops at the flush of the sync window that holds the bad step, not later
    assert params["step"] <= snap.progress.global_step < params["step"] + session.sync_every
    # the step named in the message is the first whose loss was not a finite number
    losses = dict(zip(snap.steps.tolist(), snap.losses.tolist()))
    assert not math.isfinite(losses[params["step"]])
    assert all(math.isfinite(v) for step, v in losses.items() if step < params["step"])
    assert params["lr"] == preset.config.lr
    assert snap.epochs == ()  # not even one epoch completed


def test_high_lr_preset_trains_with_a_ten_times_smaller_rate(mnist):
    preset = PRESETS["high_lr"]
    config = preset.config.with_changes(lr=preset.config.lr / 10, epochs=1)
    session = TrainingSession(preset.spec, config, mnist, "cpu")
    session.start()
    assert session.join(120)
    assert session.status == "done"
    assert session.snapshot().epochs[-1].test_acc > 0.8


def test_zero_init_preset_keeps_all_hidden_units_identical(mnist):
    preset = PRESETS["zero_init"]
    config = preset.config.with_changes(train_size=20 * preset.config.batch_size, epochs=1)
    session = TrainingSession(preset.spec, config, mnist, "cpu")
    session.start()
    assert session.join(60)
    assert session.status == "done"
    net = session.model_copy()
    hidden = net.blocks[0].op.weight.detach()
    out = net.blocks[1].op.weight.detach()
    assert hidden.abs().max() > 1e-3  # the weights did move ...
    assert torch.allclose(hidden, hidden[:1].expand_as(hidden))  # ... but every unit moved the same way
    assert torch.allclose(out, out[:, :1].expand_as(out))


def test_deep_sigmoid_preset_has_vanishing_gradients(mnist):
    x, y = _normalized_batch(mnist)

    def first_to_last(spec) -> float:
        net = build_model(spec, seed=0)
        F.cross_entropy(net(x), y).backward()
        norms = [b.op.weight.grad.norm().item() for b in net.weight_blocks()]
        return norms[0] / norms[-2]  # first hidden layer vs last hidden layer

    sigmoid = first_to_last(PRESETS["deep_sigmoid"].spec)
    relu = first_to_last(dense_spec([64] * 6, "relu"))
    assert sigmoid < 0.01
    assert relu > 0.1


def test_wide_and_deep_presets_have_similar_parameter_counts():
    wide = count_parameters(build_model(PRESETS["wide_shallow"].spec))
    deep = count_parameters(build_model(PRESETS["narrow_deep"].spec))
    assert abs(wide - deep) / wide < 0.05
    assert len(PRESETS["narrow_deep"].spec.layers) > len(PRESETS["wide_shallow"].spec.layers)
    assert max(layer.units for layer in PRESETS["narrow_deep"].spec.layers) < PRESETS["wide_shallow"].spec.layers[0].units


def test_small_cnn_preset_is_two_conv_pool_blocks_then_dense():
    spec = PRESETS["small_cnn"].spec
    assert [layer.kind for layer in spec.layers] == ["conv2d", "maxpool", "conv2d", "maxpool", "dense"] or \
        [layer.kind for layer in spec.layers if layer.kind != "batchnorm"] == ["conv2d", "maxpool", "conv2d", "maxpool", "dense"]
    assert PRESETS["small_cnn"].config.epochs <= 5

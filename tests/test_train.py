"""TrainingSession on the real MNIST sample: accuracy, determinism, commands, failure states."""
from __future__ import annotations

import dataclasses
import time

import pytest
import torch

from dlplay.classify.train import TrainingSession
from dlplay.errors import UserError
from dlplay.nn.presets import PRESETS
from dlplay.nn.spec import TrainConfig, dense_spec, lr_factor
from helpers import wait_for


def test_tutorial_model_reaches_95_percent_in_10_epochs(mnist):
    preset = PRESETS["tutorial"]
    session = TrainingSession(preset.spec, preset.config, mnist, "cpu")
    session.start()
    assert session.join(timeout=180)
    snap = session.snapshot()
    assert snap.progress.status == "done", snap.progress
    assert len(snap.epochs) == 10
    assert snap.epochs[-1].test_acc >= 0.95
    assert snap.epochs[-1].train_loss < snap.epochs[0].train_loss
    assert len(snap.losses) == 10 * 282 == snap.progress.global_step  # 9,000 images: 10% held out to validate
    assert snap.epochs[0].train_acc > 0.8


def test_same_seed_same_losses_and_other_seed_differs(mnist):
    def losses(seed):
        s = TrainingSession(dense_spec([32]), TrainConfig(epochs=1, seed=seed, train_size=2000), mnist, "cpu")
        s.start()
        assert s.join(60)
        return s.snapshot().losses

    a, b, c = losses(1), losses(1), losses(2)
    assert len(a) == 63
    assert a.tolist() == b.tolist()
    assert a.tolist() != c.tolist()


def test_step_pause_resume_stop(mnist):
    s = TrainingSession(dense_spec([16]), TrainConfig(epochs=50), mnist, "cpu")
    s.step(1)
    assert wait_for(lambda: s.snapshot().progress.global_step == 1 and s.status == "paused")
    s.step(3)
    assert wait_for(lambda: s.snapshot().progress.global_step == 4)
    time.sleep(0.2)
    assert s.snapshot().progress.global_step == 4  # stays paused after single steps
    assert len(s.snapshot().losses) == 4
    s.resume()
    assert wait_for(lambda: s.snapshot().progress.global_step > 100)
    s.pause()
    assert wait_for(lambda: s.status == "paused")
    frozen = s.snapshot().progress.global_step
    time.sleep(0.3)
    assert s.snapshot().progress.global_step == frozen
    s.resume()
    assert wait_for(lambda: s.status == "running")
    s.stop()
    assert s.join(10)
    assert s.status == "stopped"
    assert not s.is_alive


def test_learning_rate_changes_mid_run(mnist):
    s = TrainingSession(dense_spec([16]), TrainConfig(epochs=50, lr=1e-3), mnist, "cpu")
    s.start()
    assert wait_for(lambda: s.snapshot().progress.global_step > 20)
    s.set_lr(0.05)
    assert wait_for(lambda: s.snapshot().lr_changes)
    step, lr = s.snapshot().lr_changes[0]
    assert lr == 0.05
    assert step > 20
    assert s.optimizer.param_groups[0]["lr"] == 0.05
    assert s.snapshot().progress.lr == 0.05
    with pytest.raises(UserError):
        s.set_lr(-1)
    with pytest.raises(UserError):
        s.set_lr(float("nan"))
    s.stop()
    assert s.join(10)


class LrLog:
    def __init__(self):
        self.lrs = {}

    def after_step(self, session, step):
        self.lrs[step] = session.optimizer.param_groups[0]["lr"]


def test_cosine_schedule_scales_the_chosen_rate_and_follows_live_changes(mnist):
    log = LrLog()
    cfg = TrainConfig(epochs=2, lr=0.01, batch_size=100, schedule="cosine", train_size=2000)
    s = TrainingSession(dense_spec([16]), cfg, mnist, "cpu", callbacks=[log])
    s.step(10)  # ten single steps, then it stays paused
    assert wait_for(lambda: s.snapshot().progress.global_step == 10)
    total = s.total_steps
    assert total == 40
    for step in (1, 5, 10):
        assert log.lrs[step] == pytest.approx(0.01 * lr_factor("cosine", step, total))
    assert s.snapshot().progress.lr == pytest.approx(log.lrs[10])
    s.set_lr(0.1)  # the learner's new rate is scaled by the schedule from the next step on
    s.resume()
    assert s.join(30)
    assert s.status == "done"
    assert log.lrs[11] == pytest.approx(0.1 * lr_factor("cosine", 11, total))
    assert log.lrs[total] == pytest.approx(0.1 * lr_factor("cosine", total, total))
    assert log.lrs[total] < 0.1 * 0.01
    assert s.snapshot().lr_changes[0] == (11, 0.1)


def test_divergence_is_a_state_with_advice(mnist):
    spec = dense_spec([256, 256], "relu")
    s = TrainingSession(spec, TrainConfig(optimizer="sgd", lr=10.0, epochs=3), mnist, "cpu", sync_every=10)
    s.start()
    assert s.join(60)
    p = s.snapshot().progress
    assert p.status == "diverged"
    assert p.message == "train.msg_diverged"
    params = dict(p.message_params)
    assert params["lr"] == 10.0
    assert params["step"] >= 1


def test_exception_in_thread_becomes_failed_state(mnist):
    class Boom:
        def after_step(self, session, step):
            if step == 5:
                raise RuntimeError("probe exploded")

    s = TrainingSession(dense_spec([8]), TrainConfig(epochs=1), mnist, "cpu", callbacks=[Boom()])
    s.start()
    assert s.join(30)
    p = s.snapshot().progress
    assert p.status == "failed"
    assert "probe exploded" in dict(p.message_params)["error"]


def test_heartbeat_timeout_stops_an_abandoned_run(mnist):
    s = TrainingSession(dense_spec([8]), TrainConfig(epochs=100), mnist, "cpu", heartbeat_timeout=0.3)
    s.start()
    assert s.join(10)
    p = s.snapshot().progress
    assert p.status == "stopped"
    assert p.message == "train.msg_abandoned"


def test_model_copy_is_consistent_and_independent(mnist):
    s = TrainingSession(dense_spec([16]), TrainConfig(epochs=20), mnist, "cpu")
    s.start()
    assert wait_for(lambda: s.snapshot().progress.global_step > 10)
    copy = s.model_copy()
    w = copy.blocks[0].op.weight.detach().clone()
    time.sleep(0.2)
    assert torch.equal(copy.blocks[0].op.weight, w)  # training does not touch the copy
    assert not copy.training
    s.stop()
    s.join(10)


def test_train_size_limits_steps_and_evaluate_on_demand(mnist):
    s = TrainingSession(dense_spec([16]), TrainConfig(epochs=2, batch_size=100, train_size=1000), mnist, "cpu")
    assert s.steps_per_epoch == 10
    assert s.total_steps == 20
    loss0, acc0 = s.evaluate()
    assert 0.0 <= acc0 <= 0.3
    assert loss0 > 1.5  # untrained: about chance
    s.start()
    assert s.join(30)
    assert s.snapshot().progress.global_step == 20
    loss1, acc1 = s.evaluate()
    assert acc1 > acc0
    assert loss1 < loss0
    assert s.snapshot().epochs[-1].test_acc == pytest.approx(acc1)




def test_a_cnn_trains_channels_last_on_the_cpu_and_hands_out_the_usual_layout(mnist):
    from dlplay.classify.checkpoint import load_checkpoint, save_checkpoint

    preset = PRESETS["small_cnn"]
    config = dataclasses.replace(preset.config, epochs=1, train_size=256)
    session = TrainingSession(preset.spec, config, mnist, device="cpu")
    conv = session.model.blocks[3].op.weight
    assert session.channels_last
    assert conv.is_contiguous(memory_format=torch.channels_last)
    assert not conv.is_contiguous()
    session.start()
    assert session.join(120)
    assert session.status == "done"
    state = session.state_dict()
    assert all(t.is_contiguous() for t in state.values())
    copy = session.model_copy()
    x = session.normalize(mnist.test_images[:64])
    with torch.inference_mode():
        torch.testing.assert_close(copy(x), session.model.eval()(x), rtol=1e-4, atol=1e-5)
    data = save_checkpoint(session.model, preset.spec, config)
    ckpt = load_checkpoint(data)
    assert all(t.is_contiguous() for t in ckpt.state_dict.values())
    assert not TrainingSession(dense_spec([16]), config, mnist, device="cpu").channels_last

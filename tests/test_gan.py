"""GanSession (dlplay.gan.session): the shared run machinery with a GAN's step — pause, single steps of D, of G or
of both, pace, Stop, heartbeat, slots; what each step changes; state dicts; divergence and failures as
states; callbacks; a conditional GAN; the config's checks with messages in both languages."""
from __future__ import annotations

import io
import time

import pytest
import torch

from dlplay.errors import UserError
from dlplay.gan.handle import GanHandle
from dlplay.gan.lab import LAB_CONFIG, lab_session
from dlplay.gan.session import Every, GanCallback, GanConfig, GanSession, LabelConcat, mlp
from dlplay.i18n import translate
from dlplay.run.control import protocol_members
from dlplay.server.slots import SlotPool
from helpers import wait_for, wait_for_status

FAST = LAB_CONFIG.with_changes(total_steps=40, device="cpu", batch_size=64)


def run(total_steps: int = 40, **kwargs) -> GanSession:
    return lab_session("ring", config=FAST.with_changes(total_steps=total_steps), device="cpu", **kwargs)


def params(net: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def wait_paused_at(session: GanSession, step: int) -> None:
    assert wait_for(lambda: session.snapshot().progress.global_step == step and session.status == "paused", 20), \
        (session.status, session.snapshot().progress.global_step)


def test_a_run_trains_to_the_end_and_implements_the_handle():
    session = run(60, sync_every=16)
    assert isinstance(session, GanHandle)
    session.start()
    assert session.join(60)
    assert session.status == "done"
    snap = session.snapshot()
    assert snap.progress.global_step == 60
    assert list(snap.steps) == list(range(1, 61))
    assert snap.d_updates == 2 * 60
    assert snap.g_updates == 60  # two D updates per G update (GAN Lab's default)
    for curve in (snap.d_loss, snap.g_loss):
        assert curve.shape == (60,)
        assert torch.isfinite(torch.from_numpy(curve)).all()
    assert ((snap.d_real > 0) & (snap.d_real < 1)).all()
    assert ((snap.d_fake > 0) & (snap.d_fake < 1)).all()
    assert snap.d_loss[0] == pytest.approx(2 * 0.693, abs=0.3)  # an untrained D guesses: 2·log 2


def test_a_gan_session_has_every_member_of_the_gan_handle():
    names = set(protocol_members(GanHandle))
    assert {"step_d", "step_g", "sample", "discriminate", "copies", "state_dict", "snapshot"} <= names
    session = run()
    assert sorted(name for name in names if not hasattr(session, name)) == []


def test_step_d_changes_only_d_and_step_g_only_g():
    session = run()
    try:
        session.start(paused=True)
        assert wait_for_status(session, "paused")
        g0, d0 = params(session.generator), params(session.discriminator)
        session.step_d()
        wait_paused_at(session, 1)
        g1, d1 = params(session.generator), params(session.discriminator)
        assert same(g0, g1)
        assert not same(d0, d1)
        session.step_g()
        wait_paused_at(session, 2)
        g2, d2 = params(session.generator), params(session.discriminator)
        assert not same(g1, g2)
        assert same(d1, d2)
        snap = session.snapshot()
        assert (snap.d_updates, snap.g_updates) == (1, 1)
        session.step(2)  # two whole steps: 2 × (2 D updates + 1 G update)
        wait_paused_at(session, 4)
        snap = session.snapshot()
        assert (snap.d_updates, snap.g_updates) == (5, 3)
        assert len(snap.steps) == 4
        session.step_d(2)  # steps granted in turn keep their kinds
        session.step_g(1)
        wait_paused_at(session, 7)
        assert (session.snapshot().d_updates, session.snapshot().g_updates) == (7, 4)
    finally:
        session.stop()
        session.join(10)
    assert session.status == "stopped"


def test_pause_resume_stop_and_pace():
    session = run(100_000)
    try:
        session.set_pace(20.0)
        session.start()
        assert wait_for(lambda: session.snapshot().progress.global_step >= 3, 30)  # each synced at once at this pace
        t0, s0 = time.monotonic(), session.snapshot().progress.global_step
        time.sleep(1.0)
        steps = session.snapshot().progress.global_step - s0
        # the pace is a ceiling (a loaded machine may be slower): at most 20 a second, and a few in flight
        assert 0 < steps <= 20 * (time.monotonic() - t0) + 3, steps
        session.pause()
        assert wait_for_status(session, "paused")
        held = session.snapshot().progress.global_step
        time.sleep(0.3)
        assert session.snapshot().progress.global_step == held
        session.set_pace(None)
        session.resume()
        assert wait_for(lambda: session.snapshot().progress.global_step > held + 50, 20)
    finally:
        session.stop()
        assert session.join(10)
    assert session.status == "stopped"
    assert session.finished_at is not None


def test_a_lost_heartbeat_stops_the_run():
    session = run(100_000, heartbeat_timeout=0.3)
    session.start()
    assert session.join(20)
    assert session.status == "stopped"
    assert session.snapshot().progress.message == "train.msg_abandoned"


def test_runs_wait_for_a_slot():
    pool = SlotPool(1)
    first, second = run(100_000, slot_pool=pool), run(30, slot_pool=pool)
    try:
        first.start()
        assert wait_for_status(first, "running")
        second.start()
        assert wait_for_status(second, "queued")
        first.stop()
        assert second.join(30)
        assert second.status == "done"
    finally:
        first.stop()
        second.stop()
        first.join(10)


def test_state_dict_round_trips_through_weights_only_load():
    session = run(20)
    session.start()
    assert session.join(30)
    assert session.status == "done"
    state = session.state_dict()
    assert {k.partition(".")[0] for k in state} == {"generator", "discriminator"}
    assert all(v.device.type == "cpu" for v in state.values())
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    fresh = lab_session("ring", config=FAST.with_changes(seed=5), device="cpu")
    z = session.noise(32, seed=3)
    x = torch.rand(16, 2) * 2 - 1
    assert not torch.equal(fresh.sample(z), session.sample(z))
    fresh.load_state_dict(loaded)
    assert torch.equal(fresh.sample(z), session.sample(z))
    assert torch.equal(fresh.discriminate(x), session.discriminate(x))
    g, _d = session.copies()
    assert not g.training
    assert torch.equal(g(z), session.sample(z))
    assert torch.allclose(torch.sigmoid(session.discriminator_copy()(x)).reshape(-1), session.discriminate(x))
    with pytest.raises(KeyError):
        fresh.load_state_dict({"critic.0.weight": torch.zeros(1)})


def test_noise_is_reproducible_and_of_the_configured_kind():
    session = run()
    assert torch.equal(session.noise(8, seed=1), session.noise(8, seed=1))
    assert not torch.equal(session.noise(8, seed=1), session.noise(8, seed=2))
    z = session.noise(4000, seed=0)
    assert z.shape == (4000, 2)
    assert z.min() >= -1
    assert z.max() <= 1  # the lab's uniform noise


def test_non_finite_losses_end_the_run_as_diverged():
    def poisoned(n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.full((n, 2), float("nan"))

    session = GanSession(mlp(2, [8], 2, seed=0), mlp(2, [8], 1, seed=1), poisoned, FAST, "cpu")
    session.start()
    assert session.join(20)
    assert session.status == "diverged"
    p = session.snapshot().progress
    assert p.message == "gan.msg_diverged"
    assert dict(p.message_params)["step"] >= 1
    assert "NaN" in translate(p.message, "en", **dict(p.message_params))


def test_a_failing_sampler_is_a_failed_state_with_its_message():
    def broken(n: int, generator: torch.Generator) -> torch.Tensor:
        raise RuntimeError("no data here")

    session = GanSession(mlp(2, [8], 2), mlp(2, [8], 1), broken, FAST, "cpu")
    session.start()
    assert session.join(20)
    assert session.status == "failed"
    assert "no data here" in dict(session.snapshot().progress.message_params)["error"]


def test_callbacks_run_every_n_steps_and_read_samples():
    frames: list[tuple[int, torch.Tensor]] = []
    hooks: list[str] = []

    class Hooks(GanCallback):
        def on_start(self, session):
            hooks.append("start")

        def on_sync(self, session):
            hooks.append("sync")

        def on_end(self, session):
            hooks.append("end")

    fixed = torch.zeros(4, 2)
    session = run(30, sync_every=10, callbacks=[Every(10, lambda s, step: frames.append((step, s.sample(fixed))),
                                                       at_start=True), Hooks()])
    session.start()
    assert session.join(30)
    assert session.status == "done"
    assert [step for step, _ in frames] == [0, 10, 20, 30]
    assert all(frame.shape == (4, 2) for _, frame in frames)
    assert not torch.equal(frames[0][1], frames[-1][1])  # G learned between the first and the last frame
    assert hooks[0] == "start"
    assert hooks[-1] == "end"
    assert hooks.count("sync") >= 3


def test_set_lrs_applies_to_each_network():
    session = run()
    session.set_lrs(lr_d=0.01)
    assert (session.lr_d, session.lr_g) == (0.01, FAST.lr_g)
    session.set_lrs(lr_g=0.02)
    assert (session.lr_d, session.lr_g) == (0.01, 0.02)
    with pytest.raises(UserError):
        session.set_lrs(lr_d=-1.0)
    session.set_lr(0.003)  # both, applied by the training thread before its next step
    session.step()
    assert wait_for(lambda: session.lr_d == 0.003 and session.lr_g == 0.003, 20)
    session.stop()
    session.join(10)


def test_a_conditional_gan_takes_labels():
    classes = 3
    centers = torch.tensor([[-0.5, 0.0], [0.0, 0.5], [0.5, 0.0]])

    def labelled(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(classes, (n,), generator=generator)
        return centers[y] + 0.05 * torch.randn(n, 2, generator=generator), y

    g = LabelConcat(mlp(2 + classes, [16], 2, seed=0), classes)
    d = LabelConcat(mlp(2 + classes, [16], 1, seed=1), classes)
    session = GanSession(g, d, labelled, FAST.with_changes(num_classes=classes, total_steps=20), "cpu")
    session.start()
    assert session.join(30)
    assert session.status == "done"
    z = session.noise(6)
    out = session.sample(z, torch.tensor([0, 1, 2, 0, 1, 2]))
    assert out.shape == (6, 2)
    with pytest.raises(ValueError, match="needs labels"):
        session.sample(z)


@pytest.mark.parametrize(("changes", "key"), [
    ({"batch_size": 0}, "gan.bad_int"),
    ({"d_steps": 99}, "gan.bad_int"),
    ({"noise": "pink"}, "gan.bad_choice"),
    ({"optimizer_g": "lbfgs"}, "gan.bad_choice"),
    ({"lr_d": 0.0}, "spec.lr_range"),
    ({"beta1": 1.0}, "gan.bad_beta1"),
    ({"r1": -1.0}, "gan.bad_r1"),
])
def test_bad_settings_get_a_message_in_both_languages(changes, key):
    with pytest.raises(UserError) as err:
        GanConfig().with_changes(**changes)
    assert err.value.key == key
    for lang in ("en", "zh"):
        text = err.value.message(lang)
        assert "gan." not in text, text
        assert "{" not in text, text


def test_a_setting_is_named_in_the_page_language():
    with pytest.raises(UserError) as err:
        GanConfig(batch_size=0).validated()
    assert "批大小" in err.value.message("zh")
    assert "batch size" in err.value.message("en")

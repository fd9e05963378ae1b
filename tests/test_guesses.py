"""Guess, then run (dlplay/learn/guesses.py): every question is answered from its runs' own measurements, and
settings that change what the runs measure change the answer."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dlplay.classify.probe import Probe
from dlplay.classify.train import TrainingSession
from dlplay.i18n import translate
from dlplay.learn.guesses import QUESTIONS, Outcome, RunPlan, Tally, answer, loss_answer
from dlplay.nn.spec import dense_spec


def run_plans(mnist, plans: tuple[RunPlan, ...]) -> list[TrainingSession]:
    runs = []
    for plan in plans:
        run = TrainingSession(plan.spec, plan.config, mnist, "cpu", callbacks=[Probe(every=plan.probe_every or 100)])
        run.start()
        runs.append(run)
    for run in runs:
        assert run.join(180), run.status
    return runs


def with_config(plan: RunPlan, **changes) -> RunPlan:
    return dataclasses.replace(plan, config=plan.config.with_changes(**changes))


def check_texts(q_key: str, ans) -> None:
    """The answer is one of the choices and its explanation fills in both languages."""
    q = QUESTIONS[q_key]
    assert ans.choice in q.choices
    for lang in ("en", "zh"):
        text = translate(ans.key, lang, **ans.params)
        assert "{" not in text
        assert text != ans.key


def test_learning_rate_question(mnist):
    q = QUESTIONS["lr"]
    (plan,) = q.plans
    assert plan.config.lr == 3.0
    ans = answer(q, run_plans(mnist, q.plans))
    assert ans.choice == "blows_up", ans
    check_texts("lr", ans)
    assert float(ans.params["peak"]) > 10 * float(ans.params["start"])
    ans = answer(q, run_plans(mnist, (with_config(plan, lr=0.001),)))
    assert ans.choice == "learns", ans
    check_texts("lr", ans)


def test_smallest_gradient_question(mnist):
    q = QUESTIONS["grad"]
    (plan,) = q.plans
    runs = run_plans(mnist, q.plans)
    ans = answer(q, runs)
    assert ans.choice == "input_side", ans  # sigmoid, six layers deep: the gradient vanishes towards the input
    check_texts("grad", ans)
    probe = runs[0].probe_snapshot()
    norms = probe.recent("grad_w", window=len(probe.steps))
    assert ans.params["smallest"] == probe.layers[int(np.argmin(norms))].name
    assert float(ans.params["ratio"]) > 100
    # two ReLU layers with Adam: no vanishing; the answer follows the measured norms
    relu = dataclasses.replace(plan, spec=dense_spec([64, 64], "relu"), config=plan.config.with_changes(optimizer="adam", lr=1e-3))
    runs = run_plans(mnist, (relu,))
    ans = answer(q, runs)
    probe = runs[0].probe_snapshot()
    norms = probe.recent("grad_w", window=len(probe.steps))
    assert ans.choice == "even", ans
    assert ans.params["smallest"] == probe.layers[int(np.argmin(norms))].name
    assert float(ans.params["ratio"]) == pytest.approx(norms.max() / norms.min(), rel=1e-2)
    check_texts("grad", ans)


def test_wide_or_deep_question(mnist):
    q = QUESTIONS["race"]
    wide, deep = q.plans
    ans = answer(q, run_plans(mnist, q.plans))
    check_texts("race", ans)
    # a crippled deep network (four sigmoid layers of 4, plain SGD): the wide one wins
    weak_deep = dataclasses.replace(deep, spec=dense_spec([4] * 4, "sigmoid"),
                                    config=deep.config.with_changes(optimizer="sgd", lr=0.01))
    runs = run_plans(mnist, (wide, weak_deep))
    ans = answer(q, runs)
    assert ans.choice == "wide", ans
    assert ans.params["wide"] == f"{runs[0].snapshot().epochs[-1].test_acc:.1%}"
    # a crippled wide network (2 units): the deep one wins
    weak_wide = dataclasses.replace(wide, spec=dense_spec([2], "relu"))
    ans = answer(q, run_plans(mnist, (weak_wide, deep)))
    assert ans.choice == "deep", ans
    check_texts("race", ans)


def test_a_nan_loss_blows_up():
    base = Outcome(status="done", losses=np.array([2.3, 2.0, 1.0]), steps=np.array([1, 2, 3]), epochs=(), probe=None,
                   num_classes=10)
    assert loss_answer([dataclasses.replace(base, status="diverged", losses=np.array([2.3, np.nan]))]).choice == "blows_up"
    assert loss_answer([base]).choice == "stuck"  # no epoch finished: no test accuracy above chance


def test_tally():
    tally = Tally()
    tally.record("lr", "learns", False)
    tally.record("grad", "first", True)
    assert (tally.right, tally.total) == (1, 2)


@pytest.mark.parametrize("key", sorted(QUESTIONS))
def test_every_question_has_its_texts(key):
    q = QUESTIONS[key]
    for lang in ("en", "zh"):
        assert translate(f"guesses.{key}.question", lang) != f"guesses.{key}.question"
        for choice in q.choices:
            assert translate(f"guesses.{key}.choice_{choice}", lang) != f"guesses.{key}.choice_{choice}"
        for plan in q.plans:
            assert translate(plan.name, lang) != plan.name

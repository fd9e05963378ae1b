"""Figures of the One step page (issue 31): time per phase of a recorded step, the hand editor's
latency, and the loss landscape's time, on the tutorial model (784 → 128 ReLU → 10, Adam, batch 32)
after one epoch on the MNIST sample, one torch thread.

  phases      ``compute_step`` on the run's next batch (the engine's equations written out, each phase
              timed), interleaved with the baseline: the dense engine's own step (forward_backward +
              update) on the same batch and weights, which is what the run does; ratio = record/engine.
  record      ``record_next_step`` end to end (the run's state through its handle: a snapshot or a
              replay from the nearest one, the batch, the phases) and ``take_step`` (the run trains the
              step itself, the weights compared).
  edit        one ``NeuronEditor.set`` of a first-layer weight on the step's 32 images, recomputed from
              that layer on (the server's share of an edit; the browser round trip is measured by
              tests/test_e2e_step.py, which prints it).
  landscape   a 25×25 grid, random filter-normalised directions and the path's PCA plane, on 1,000
              training images (a seeded random choice of the run's training split, landscape.subset).

    python bench/slowmo.py [--rounds 30] [--grid 25] [--images 1000]
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


def median_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:8.3f} ms"


def main() -> None:
    from dlplay.classify.fork import SnapshotKeeper
    from dlplay.classify.train import TrainingSession
    from dlplay.data.datasets import load_dataset
    from dlplay.learn import landscape as L
    from dlplay.learn import slowmo as sm
    from dlplay.nn.engine import DenseEngine
    from dlplay.nn.optimizers import make_optimizer
    from dlplay.nn.presets import PRESETS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--grid", type=int, default=25)
    parser.add_argument("--images", type=int, default=1000)
    args = parser.parse_args()

    preset = PRESETS["tutorial"]
    data = load_dataset("mnist", download=False)
    run = TrainingSession(preset.spec, preset.config.with_changes(epochs=3), data, "cpu", callbacks=[SnapshotKeeper()])
    run.start(paused=True)
    run.step(run.steps_per_epoch)
    while run.snapshot().progress.global_step < run.steps_per_epoch or run.status != "paused":
        time.sleep(0.05)
    print(f"tutorial model after one epoch ({run.steps_per_epoch} steps, {run.train_size} images), batch 32, Adam")

    # ----- phases, interleaved with the engine's own step on the same batch
    record = sm.record_next_step(run)
    state = run.resume_state(run.snapshot().progress.global_step)
    per_phase: dict[str, list[float]] = {k: [] for k in sm.PHASE_KINDS}
    totals, engine_times = [], []
    per, group = sm._opt_state(state, 4)
    for _ in range(args.rounds):
        net = sm.net_from(run.spec, state.model_state)
        t0 = time.perf_counter()
        rec = sm.compute_step(net, record.x, record.labels, "adam", per, group, record.lr)
        totals.append(time.perf_counter() - t0)
        for k, v in rec.seconds.items():
            per_phase[k].append(v)
        net2 = sm.net_from(run.spec, state.model_state).train()
        opt = make_optimizer("adam", net2.parameters(), record.lr, 0.0)
        opt.load_state_dict(copy.deepcopy(state.optimizer_state))  # the fused kernel updates in place
        eng = DenseEngine(net2, opt)
        eng.forward_backward(record.x, record.labels)
        eng.update()  # the first update builds the fused kernel: time the second step
        net3 = sm.net_from(run.spec, state.model_state).train()
        for p, q in zip(net2.parameters(), net3.parameters()):
            p.data.copy_(q.data)
        t0 = time.perf_counter()
        eng.forward_backward(record.x, record.labels)
        eng.update()
        engine_times.append(time.perf_counter() - t0)
    print("\ntime per phase (median of", args.rounds, "records of the same step)")
    for k in sm.PHASE_KINDS:
        print(f"  {k:<9} {median_ms(per_phase[k])}")
    rec_ms, eng_ms = statistics.median(totals), statistics.median(engine_times)
    print(f"  all       {median_ms(totals)}   the engine's own step {median_ms(engine_times)}   "
          f"ratio {rec_ms / eng_ms:.1f}x")

    # ----- record end to end, then the run takes the step
    rec_times, take_times, diffs = [], [], []
    for _ in range(max(3, args.rounds // 3)):
        t0 = time.perf_counter()
        record = sm.record_next_step(run)
        rec_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        diffs.append(sm.take_step(run, record))
        take_times.append(time.perf_counter() - t0)
    print(f"\nrecord_next_step (state via the handle, replay <= 100 steps) {median_ms(rec_times)}   "
          f"max {max(rec_times) * 1000:.1f} ms")
    print(f"take_step (the run trains it, weights compared)          {median_ms(take_times)}   "
          f"largest |run - replay| {max(diffs):.2g}")

    # ----- the hand editor
    record = sm.record_next_step(run)
    editor = sm.NeuronEditor(run.spec, record.state_before(), record.x, record.labels, 0, 7)
    edits = []
    for k in range(200):
        t0 = time.perf_counter()
        editor.set(300 + k % 50, 0.01 * k)
        edits.append(time.perf_counter() - t0)
    full = []
    for _ in range(50):
        t0 = time.perf_counter()
        net = sm.net_from(run.spec, editor.state())
        with torch.no_grad():
            net(record.x)
        full.append(time.perf_counter() - t0)
    print(f"\nedit latency (set + recompute from the edited layer, 32 images) {median_ms(edits)}   "
          f"p95 {sorted(edits)[int(0.95 * len(edits))] * 1000:.3f} ms   "
          f"(a whole network rebuilt and run: {median_ms(full)})")

    # ----- the landscape
    for kind in ("random", "pca"):
        job = L.LandscapeJob([("run", run)], kind=kind, n=args.grid, n_images=args.images, budget_s=600)
        t0 = time.perf_counter()
        job.start()
        job.join()
        res = job.result
        assert res is not None, job.error
        assert res.complete, job.error
        print(f"\nlandscape {args.grid}x{args.grid} ({kind}) on {res.n_images} training images: grid {res.seconds:.2f} s "
              f"({res.seconds / res.loss.size * 1000:.2f} ms a point), with the path ({len(job.paths[0].steps)} "
              f"states) {time.perf_counter() - t0:.2f} s; centre J = {res.center_loss:.4f}, "
              f"range {res.loss.min():.3f} .. {res.loss.max():.3f}")
    # the dense short cut against the whole network at every point, interleaved, on the same plane and images
    x, y = L.subset(run, args.images)
    plane = L.random_plane(run.state_dict())
    fast, whole = [], []
    for _ in range(3):
        fast.append(L.compute(run.spec, plane, x, y, n=9, budget_s=600).seconds / 81)
        whole.append(L.compute(run.spec, plane, x, y, n=9, budget_s=600, shortcut=False).seconds / 81)
    print(f"\na point of the grid: first layer from three products {median_ms(fast)}, the whole network "
          f"{median_ms(whole)}   ratio {statistics.median(whole) / statistics.median(fast):.1f}x")
    run.stop()
    run.join(10)


if __name__ == "__main__":
    main()

"""Measure the recurrent presets: test accuracy per epoch and time, trained on the 10k MNIST sample.

Usage: python bench/rnn_presets.py [--presets rnn_rows lstm_rows rnn_pixels gru_rows] [--threads 1]
       [--epochs N] [--seed 0]

Trains exactly as the app does (TrainingSession with the Probe, the preset's TrainConfig, CPU, batch
32) on the sample's 10,000 training images; after every epoch it prints the accuracy on the
10,000-image test set, and at the end the gradient-through-time factor the probe saw
(‖∂L/∂h_T‖ / ‖∂L/∂h_1‖, the figure the Sequences page's hint quotes).
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from dlplay.classify.probe import Probe
from dlplay.classify.train import TrainingSession
from dlplay.data.datasets import load_dataset
from dlplay.nn.model import build_model, count_parameters
from dlplay.nn.presets import PRESETS

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("DLPLAY_DATA_DIR", str(REPO.parent / "shared" / "datasets" / "mnist-sample"))

RECURRENT = [key for key, preset in PRESETS.items() if preset.spec.is_recurrent()]


def run(key: str, dataset, seed: int, epochs: int | None) -> None:
    preset = PRESETS[key]
    config = preset.config.with_changes(seed=seed, device="cpu", **({"epochs": epochs} if epochs else {}))
    print(f"== {key}: {preset.spec.describe()} (order {preset.spec.order}), "
          f"{count_parameters(build_model(preset.spec)):,} parameters; {config.to_json()}", flush=True)
    probe = Probe()
    session = TrainingSession(preset.spec, config, dataset, "cpu", callbacks=[probe])
    t0 = time.perf_counter()
    session.start()
    seen = 0
    while not session.join(1.0):
        epochs_done = session.snapshot().epochs
        for e in epochs_done[seen:]:
            print(f"{key} epoch {e.epoch}: test acc {e.test_acc:.4f}  train acc {e.train_acc:.4f}  "
                  f"epoch time {e.seconds:.1f} s", flush=True)
        seen = len(epochs_done)
    snap = session.snapshot()
    for e in snap.epochs[seen:]:
        print(f"{key} epoch {e.epoch}: test acc {e.test_acc:.4f}  train acc {e.train_acc:.4f}  "
              f"epoch time {e.seconds:.1f} s", flush=True)
    if session.status != "done":
        raise SystemExit(f"run ended with status {session.status}: {snap.progress.message}")
    total = time.perf_counter() - t0
    probe_snap = probe.snapshot()
    factor = ""
    if probe_snap is not None and getattr(probe_snap, "time_grad", None) is not None:
        g = probe_snap.time_grad
        factor = f"; gradient through time last/first step {g[-1] / max(g[0], 1e-30):.3g} (step {probe_snap.last_step})"
    print(f"{key}: final test acc {snap.epochs[-1].test_acc:.4f}, total {total:.1f} s{factor}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=RECURRENT, choices=RECURRENT)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=None, help="override the presets' epochs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = load_dataset("mnist", download=False)
    print(f"train {len(dataset.train_labels)} images, test {len(dataset.test_labels)} images; "
          f"torch threads {args.threads}, cpu count {os.cpu_count()}", flush=True)
    for key in args.presets:
        run(key, dataset, args.seed, args.epochs)


if __name__ == "__main__":
    main()

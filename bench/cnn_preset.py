"""Measure the small-CNN preset: test accuracy per epoch and time, trained on the 10k MNIST sample.

Usage: python bench/cnn_preset.py [--preset small_cnn] [--seeds 0 1 2] [--threads 2] [--epochs N]
       [--schedule constant|cosine|step] [--lr X] [--val-share 0]

Trains exactly as the app does (TrainingSession, the preset's TrainConfig) on the sample's 10,000
training images and reports accuracy on the official 10,000-image test set after every epoch.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from dlplay.classify.train import TrainingSession
from dlplay.data.datasets import load_dataset
from dlplay.nn.model import build_model, count_parameters
from dlplay.nn.presets import PRESETS
from dlplay.nn.spec import SCHEDULES

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("DLPLAY_DATA_DIR", str(REPO.parent / "shared" / "datasets" / "mnist-sample"))


def run_once(key: str, seed: int, epochs: int | None, dataset, **changes) -> list[tuple[int, float, float, float]]:
    """Train the preset once (``changes``: TrainConfig fields to override); [(epoch, test_acc, train_acc, seconds)]."""
    preset = PRESETS[key]
    config = preset.config.with_changes(seed=seed, device="cpu", **({"epochs": epochs} if epochs else {}), **changes)
    session = TrainingSession(preset.spec, config, dataset, "cpu")
    session.start()
    session.join()
    snap = session.snapshot()
    if session.status != "done":
        raise SystemExit(f"run ended with status {session.status}: {snap.progress.message}")
    return [(e.epoch, e.test_acc, e.train_acc, e.seconds) for e in snap.epochs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small_cnn", choices=sorted(PRESETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    parser.add_argument("--schedule", default=None, choices=SCHEDULES, help="override the preset's lr schedule")
    parser.add_argument("--lr", type=float, default=None, help="override the preset's learning rate")
    parser.add_argument("--val-share", type=float, default=None,
                        help="override the preset's validation share (0: train on every training image, as before issue 19)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = load_dataset("mnist", download=False)
    preset = PRESETS[args.preset]
    print(f"preset {args.preset}: {[layer.describe() for layer in preset.spec.layers]}")
    print(f"parameters {count_parameters(build_model(preset.spec)):,}; config {preset.config.to_json()}"
          + (f"; overridden: schedule {args.schedule}" if args.schedule else "") + (f", lr {args.lr}" if args.lr else ""))
    print(f"train {len(dataset.train_labels)} images, test {len(dataset.test_labels)} images; "
          f"torch threads {args.threads}, cpu count {os.cpu_count()}")
    finals = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        changes = {k: v for k, v in (("schedule", args.schedule), ("lr", args.lr), ("val_share", args.val_share))
                   if v is not None}
        rows = run_once(args.preset, seed, args.epochs, dataset, **changes)
        total = time.perf_counter() - t0
        for epoch, test_acc, train_acc, seconds in rows:
            print(f"seed {seed} epoch {epoch}: test acc {test_acc:.4f}  train acc {train_acc:.4f}  "
                  f"epoch time {seconds:.1f} s")
        print(f"seed {seed}: final test acc {rows[-1][1]:.4f}, best {max(r[1] for r in rows):.4f}, "
              f"total {total:.1f} s (incl. evaluation)")
        finals.append(rows[-1][1])
    if len(finals) > 1:
        print(f"final test acc over {len(finals)} seeds: min {min(finals):.4f}, "
              f"mean {sum(finals) / len(finals):.4f}, max {max(finals):.4f}")


if __name__ == "__main__":
    main()

"""What augmentation costs per training step: a step with it against the same step without it.

Usage: python bench/augment_cost.py [--rounds 7] [--steps 40] [--batches 32 512] [--level medium] [--threads 1]
       [--models tutorial small_cnn] [--device cpu]

For each model and batch size, one TrainingSession (the app's step: index_select of a uint8 batch, the
augmentation, per-batch normalisation, the dense engine's or autograd's forward, backward and update)
is stepped in interleaved rounds: ``--steps`` plain steps, then ``--steps`` steps with augmentation,
then the augmentation alone on the same batches, the order alternating between rounds, so that all
three see the same CPU drift on a shared machine. Times are process CPU time per step (wall time on
CUDA, synchronised); the figure is the median over rounds, and the ratio is to the plain step.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from dlplay.classify.train import TrainingSession
from dlplay.data.augment import LEVELS, batch_augmenter
from dlplay.data.datasets import load_dataset
from dlplay.nn.presets import PRESETS

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("DLPLAY_DATA_DIR", str(REPO.parent / "shared" / "datasets" / "mnist-sample"))


def clock(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
        return time.perf_counter()
    return time.process_time()


def measure(key: str, batch: int, level: str, rounds: int, steps: int, dataset, device: torch.device) -> dict[str, float]:
    preset = PRESETS[key]
    config = preset.config.with_changes(batch_size=batch, device=device.type)
    run = TrainingSession(preset.spec, config, dataset, device)
    augment = batch_augmenter(LEVELS[level], 0, device)
    images, labels = run.dataset.train_images, run.dataset.train_labels
    gen = torch.Generator().manual_seed(0)
    run._global_step = 0  # the step functions count steps (the loop sets this when it starts)
    run.model.train()

    def batches():
        for _ in range(steps):
            idx = torch.randint(0, len(labels), (batch,), generator=gen).to(device)
            yield torch.index_select(images, 0, idx), torch.index_select(labels, 0, idx)

    def plain() -> None:
        for x, y in batches():
            run._train_step(run.normalize(x), y)

    def augmented() -> None:
        for x, y in batches():
            run._train_step(run.normalize(augment(x)), y)

    def augment_only() -> None:
        for x, _ in batches():
            augment(x)

    kinds = {"plain": plain, "augmented": augmented, "augment only": augment_only}
    times: dict[str, list[float]] = {k: [] for k in kinds}
    for fn in kinds.values():  # warm-up
        fn()
    for r in range(rounds):
        order = list(kinds) if r % 2 == 0 else list(reversed(kinds))
        for name in order:
            t0 = clock(device)
            kinds[name]()
            times[name].append((clock(device) - t0) / steps)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 512])
    parser.add_argument("--level", default="medium", choices=[k for k in LEVELS if k != "off"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", nargs="+", default=["tutorial", "small_cnn"])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dataset = load_dataset("mnist", download=False)
    print(f"augmentation '{args.level}' ({LEVELS[args.level]}), {args.threads} torch thread(s), {device}; "
          f"median of {args.rounds} interleaved rounds of {args.steps} steps, time per step")
    print(f"{'model':>10} {'batch':>5} {'plain':>10} {'augmented':>10} {'aug only':>10} {'ratio':>6} {'per image':>10}")
    for key in args.models:
        for batch in args.batches:
            t = measure(key, batch, args.level, args.rounds, args.steps, dataset, device)
            print(f"{key:>10} {batch:>5} {t['plain'] * 1e3:>8.2f}ms {t['augmented'] * 1e3:>8.2f}ms "
                  f"{t['augment only'] * 1e3:>8.2f}ms {t['augmented'] / t['plain']:>6.2f} "
                  f"{t['augment only'] / batch * 1e6:>8.1f}us", flush=True)


if __name__ == "__main__":
    main()

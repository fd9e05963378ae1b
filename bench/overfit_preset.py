"""Measure the overfitting preset: the gap between training and validation, epoch by epoch.

Usage: python bench/overfit_preset.py [--seeds 0 1 2] [--threads 1] [--epochs N] [--patience P]

Trains the ``overfit`` preset exactly as the app does (TrainingSession, the preset's TrainConfig: 500
training images, a 784-1024-1024-10 network, no regularisation, 10% of the sample held out for
validation) and prints, per epoch, training and validation loss and accuracy, then per seed: the
epoch where the validation loss was lowest, the epoch the overfitting hint names, and the final
train - validation gaps. With ``--patience`` early stopping is on and the kept epoch is reported.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("DLPLAY_DATA_DIR", str(REPO.parent / "shared" / "datasets" / "mnist-sample"))

from dlplay.classify.train import TrainingSession  # noqa: E402
from dlplay.data.datasets import load_dataset  # noqa: E402 - after the data folder is set
from dlplay.learn.hints import overfitting_since  # noqa: E402
from dlplay.nn.presets import PRESETS  # noqa: E402


def run_once(seed: int, epochs: int | None, patience: int, dataset) -> dict:
    preset = PRESETS["overfit"]
    changes = {"seed": seed, "device": "cpu", "patience": patience, **({"epochs": epochs} if epochs else {})}
    config = preset.config.with_changes(**changes)
    session = TrainingSession(preset.spec, config, dataset, "cpu")
    start = time.perf_counter()
    session.start()
    session.join()
    seconds = time.perf_counter() - start
    snap = session.snapshot()
    if session.status != "done":
        raise SystemExit(f"run ended with status {session.status}: {snap.progress.message}")
    rows = snap.epochs
    print(f"\nseed {seed}: {session.train_size} training images, {len(session.split.val)} validation, "
          f"{seconds:.1f} s")
    print("epoch  train_loss  val_loss  train_acc  val_acc  test_acc")
    for e in rows:
        print(f"{e.epoch:5d}  {e.train_loss:10.4f}  {e.val_loss:8.4f}  {e.train_acc:9.2%}  {e.val_acc:7.2%}  {e.test_acc:8.2%}")
    best = min(rows, key=lambda e: e.val_loss)
    last = rows[-1]
    result = {
        "best_epoch": best.epoch, "best_val_loss": best.val_loss, "since": overfitting_since(rows),
        "acc_gap": last.train_acc - last.val_acc, "loss_ratio": last.val_loss / max(last.train_loss, 1e-9),
        "val_rise": last.val_loss / best.val_loss - 1, "final_val_acc": last.val_acc, "best_val_acc": best.val_acc,
        "early": snap.extras.get("early_stop"),
    }
    print(f"lowest validation loss {best.val_loss:.4f} at epoch {best.epoch}; overfitting hint: since epoch "
          f"{result['since']}; final gap train - validation accuracy {result['acc_gap']:.2%}, "
          f"validation loss {result['val_rise']:.0%} above its lowest, {result['loss_ratio']:.0f}x the training loss")
    if result["early"] is not None:
        info = result["early"]
        print(f"early stopping: stopped after epoch {info.stopped_at}, kept epoch {info.best_epoch}'s weights")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--patience", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = load_dataset("mnist", download=False)
    results = [run_once(seed, args.epochs, args.patience, dataset) for seed in args.seeds]
    print("\nover seeds (median): final train - validation accuracy gap "
          f"{statistics.median(r['acc_gap'] for r in results):.2%}, lowest validation loss at epoch "
          f"{statistics.median(r['best_epoch'] for r in results):.0f}, final validation loss "
          f"{statistics.median(r['val_rise'] for r in results):.0%} above its lowest")


if __name__ == "__main__":
    main()

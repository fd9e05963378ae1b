"""A preset's whole run, as the app trains it, from two checkouts of dlplay, taking turns: samples/s.

Each round trains the preset once with each checkout (a fresh process each, the order alternating
from round to round so that both see the same drift of a shared machine), through that checkout's
own TrainingSession: built in the main thread, trained in the run's thread, end-of-epoch
evaluation included in the run but not in the figure. The figure is the training samples/s of each
epoch, the median over the run's epochs, then the median over rounds and the ratio B / A. With one
torch thread (the default) it is timed by the training thread's own CPU time (from the end of each
epoch's first step to the end of its last, through a callback), which other processes on a shared
machine hardly disturb; with more threads it is the wall-clock rate the Train page shows
(EpochRecord.samples_per_s).

    git worktree add --detach ../dlplay-before d04e9a3    # e.g. the code before issue 21
    python bench/run_ab.py --a ../dlplay-before --b . --preset small_cnn --epochs 2 --rounds 3 [--threads 1]

Both runs train on all training images (no validation share) so that the two checkouts do the same
work, whatever their defaults.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import dataclasses, json, statistics, sys, time, torch
threads, preset_key, epochs = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
if threads:
    torch.set_num_threads(threads)
from dlplay.data.datasets import load_dataset
from dlplay.nn.presets import PRESETS
from dlplay.classify.train import TrainingSession
preset = PRESETS[preset_key]
changes = {"epochs": epochs, "device": "cpu"}
if "val_share" in {f.name for f in dataclasses.fields(preset.config)}:
    changes["val_share"] = 0.0
config = dataclasses.replace(preset.config, **changes)
class Clock:  # the training thread's CPU time at each step's end: per epoch, its steps after the first
    def __init__(self):
        self.times = {}
    def after_step(self, session, step):
        self.times[step] = time.thread_time()
clock = Clock()
session = TrainingSession(preset.spec, config, load_dataset("mnist", download=False), "cpu", callbacks=[clock])
session.start()
session.join()
epochs = session.snapshot().epochs
n, batch = session.steps_per_epoch, config.batch_size
cpu = [(session.train_size - batch) / (clock.times[(e + 1) * n] - clock.times[e * n + 1]) for e in range(len(epochs))]
print(json.dumps({"status": str(session.status), "rates": [e.samples_per_s for e in epochs], "cpu": cpu,
                  "acc": epochs[-1].test_acc if epochs else None, "threads": torch.get_num_threads()}))
"""


def one_run(checkout: Path, threads: int, preset: str, epochs: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(checkout))
    env.setdefault("DLPLAY_DATA_DIR", str(REPO.parent / "shared" / "datasets" / "mnist-sample"))
    out = subprocess.run([sys.executable, "-c", CHILD, str(threads), preset, str(epochs)], env=env,
                         capture_output=True, text=True, check=True, cwd=checkout)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["status"] != "done":
        raise SystemExit(f"{checkout}: run ended {result['status']}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", type=Path, required=True, help="checkout A (the baseline)")
    parser.add_argument("--b", type=Path, default=REPO, help="checkout B (default: this one)")
    parser.add_argument("--preset", default="small_cnn")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: PyTorch's default)")
    args = parser.parse_args()
    checkouts = {"A": args.a.resolve(), "B": args.b.resolve()}
    for label, path in checkouts.items():
        commit = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        print(f"{label}: {path} ({commit or 'not a git checkout'})")
    print(f"preset {args.preset}, {args.epochs} epochs a run, {args.rounds} rounds, threads {args.threads or 'default'}")
    rates: dict[str, list[float]] = {"A": [], "B": []}
    for r in range(args.rounds):
        order = ("A", "B") if r % 2 == 0 else ("B", "A")
        line = []
        for label in order:
            result = one_run(checkouts[label], args.threads, args.preset, args.epochs)
            rate = statistics.median(result["cpu" if args.threads == 1 else "rates"])
            rates[label].append(rate)
            line.append(f"{label} {rate:,.0f} samples/s (test acc {result['acc']:.2%}, {result['threads']} threads)")
        print(f"round {r + 1}: " + ", ".join(line), flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"median samples/s: A {med['A']:,.0f}, B {med['B']:,.0f}; B/A {med['B'] / med['A']:.2f}x "
          f"(per round: {', '.join(f'{b / a:.2f}' for a, b in zip(rates['A'], rates['B']))})")


if __name__ == "__main__":
    main()

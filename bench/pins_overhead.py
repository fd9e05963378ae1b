"""Cost of pinned images (dlplay.classify.pins) on the training thread: samples/s with 0 and with 4 pins.

Both runs are what the Train page starts: the same model, data and settings, a Probe at its default
interval and a Pins callback (empty, or following 4 test images at the probe's steps). They take
turns chunk by chunk in two threads (bench/instrumentation.py's Baton: only one trains at any moment,
the order alternates, so both see the same drift of a shared VM's cores) over one long epoch (the
10k sample repeated ``--repeat`` times); each chunk is timed in the thread's CPU time and wall time,
the first chunk of each is a warm-up. Rates are total samples / total time over all rounds.

    python bench/pins_overhead.py [--rounds 6] [--repeat 6] [--chunk 50] [--pins 4] [--model tutorial|deep]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dlplay.classify.pins import Pins
from dlplay.classify.probe import DEFAULT_EVERY, Probe
from dlplay.classify.train import TrainingSession
from dlplay.data.datasets import load_dataset
from dlplay.nn.spec import TrainConfig, dense_spec
from instrumentation import Baton, BatonCallback, replicated

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("DLPLAY_DATA_DIR", str(REPO.parent / "shared" / "datasets" / "mnist-sample"))
MODELS = {"tutorial": dense_spec([128], "relu"), "deep": dense_spec([256, 128, 64, 32], "relu")}
BATCH = 32


def one_round(spec, dataset, pins: int, chunk: int) -> Baton:
    names = ["0 pins", f"{pins} pins"]
    baton = Baton(names)
    images, labels = dataset.test_images[:pins].cpu(), dataset.test_labels[:pins].cpu()
    errors: list[BaseException] = []

    def train(name: str, pinned: bool) -> None:
        try:
            callbacks = [Probe(every=DEFAULT_EVERY), Pins(images, labels) if pinned else Pins(),
                         BatonCallback(baton, name, chunk)]
            session = TrainingSession(spec, TrainConfig(batch_size=BATCH, epochs=1, seed=0), dataset, "cpu",
                                      callbacks=callbacks)
            session.start()
            session.join()
            if session.status != "done":
                raise RuntimeError(session.status)
            if pinned:
                snap = session.pins_snapshot()
                assert snap is not None, "the pins were not read"
                assert len(snap) == pins, "the pins were not read"
                assert len(snap.steps) > 2, "the pins were not read"
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
            baton.drop(name)

    threads = [threading.Thread(target=train, args=(n, i == 1)) for i, n in enumerate(names)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return baton


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=6)
    parser.add_argument("--chunk", type=int, default=50)
    parser.add_argument("--pins", type=int, default=4)
    parser.add_argument("--model", choices=list(MODELS), default="tutorial")
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset = replicated(load_dataset("mnist", download=False), args.repeat)
    spec = MODELS[args.model]
    n_steps = (len(dataset.train_labels) + BATCH - 1) // BATCH
    print(f"model {args.model} ({spec.layers[0].units}...), batch {BATCH}, {n_steps} steps per run, probe and pins "
          f"every {DEFAULT_EVERY} steps (pins also at steps 1, 2, 4, ..., 64), {args.rounds} rounds, one torch thread, CPU")
    totals = {"cpu": {}, "wall": {}}  # kind -> [samples, seconds]
    per_round = []
    for r in range(args.rounds):
        baton = one_round(spec, dataset, args.pins, args.chunk)
        rates = {}
        for name, chunks in baton.chunks.items():
            counted = chunks[1:]  # the first chunk warms up
            steps = n_steps - args.chunk
            for i, clock in enumerate(("cpu", "wall")):
                seconds = sum(c[i] for c in counted)
                tot = totals[clock].setdefault(name, [0.0, 0.0])
                tot[0] += steps * BATCH
                tot[1] += seconds
            rates[name] = steps * BATCH / sum(c[0] for c in counted)
        names = list(rates)
        per_round.append(rates[names[1]] / rates[names[0]])
        print(f"round {r + 1}: " + ", ".join(f"{k} {v:,.0f} samples/s" for k, v in rates.items())
              + f"  ratio {per_round[-1]:.3f}")
    for clock in ("cpu", "wall"):
        rate = {k: s / t for k, (s, t) in totals[clock].items()}
        names = list(rate)
        print(f"{clock:>4} time: " + ", ".join(f"{k} {v:,.0f} samples/s" for k, v in rate.items())
              + f"  -> {names[1]} / {names[0]} = {rate[names[1]] / rate[names[0]]:.3f}"
              f" (cost {100 * (1 - rate[names[1]] / rate[names[0]]):+.1f}%)")
    print(f"median per-round ratio {statistics.median(per_round):.3f} (target >= 0.97: at most 3% cost)")


if __name__ == "__main__":
    main()

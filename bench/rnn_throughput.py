"""Throughput of a recurrent run (dlplay's TrainingSession, with and without the probe and its
gradient through time) against a plain PyTorch loop on the same model and batch.

The loops take turns in four threads exactly as in bench/instrumentation.py (whose Baton, plain
loop and session run this reuses): plain (x[idx] batches), plain-is (index_select batches), session
(TrainingSession without callbacks), probe (TrainingSession with Probe(), which on a recurrent net
also measures ‖∂L/∂h_t‖ for every step). Samples per CPU second of the training thread, pooled over
the rounds; batch 32, Adam, one torch thread.

    python bench/rnn_throughput.py [--models lstm_rows rnn_rows gru_rows] [--rounds 4] [--repeat 2] [--chunk 25]
"""
from __future__ import annotations

import argparse
import os
import time

import torch

import instrumentation as ins
from dlplay.classify.probe import DEFAULT_EVERY
from dlplay.data.datasets import load_dataset
from dlplay.nn.presets import PRESETS

RECURRENT = [key for key, preset in PRESETS.items() if preset.spec.is_recurrent()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["lstm_rows", "rnn_rows", "gru_rows"], choices=RECURRENT)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=2, help="training split repeated this often in the epoch")
    parser.add_argument("--chunk", type=int, default=25)
    parser.add_argument("--every", type=int, default=DEFAULT_EVERY)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dataset = ins.replicated(load_dataset("mnist", download=False), args.repeat).to(device)
    steps = (len(dataset.train_labels) + ins.BATCH - 1) // ins.BATCH
    print(f"device {device}, torch threads {torch.get_num_threads()}, batch {ins.BATCH}, Adam, one epoch of "
          f"{len(dataset.train_labels)} images ({steps} steps), probe every {args.every} steps, loops take turns "
          f"every {args.chunk} steps, {args.rounds} rounds", flush=True)
    steal0, wall0 = ins.steal_seconds(), time.monotonic()
    worst = float("inf")
    for key in args.models:
        spec = PRESETS[key].spec
        pooled: dict[str, list[tuple[float, float]]] = {k: [] for k in ins.KINDS}
        rounds, shares, probes = [], [], 0
        for _ in range(args.rounds):
            baton, probe = ins.interleaved_round(spec, dataset, device, args.chunk, args.every)
            n = min(len(c) for c in baton.chunks.values())
            for k in ins.KINDS:
                pooled[k] += baton.chunks[k][1:n]
            probes = probe.snapshot().probes
            r = {k: sum(c[0] for c in baton.chunks[k][1:n]) for k in ins.KINDS}
            rounds.append({f"{a}/{b}": r[b] / r[a] for a, b in ins.RATIOS})
            shares.append(probe.cpu_s / sum(c[0] for c in baton.chunks["probe"]))
        samples = args.chunk * ins.BATCH
        cpu = {k: samples * len(v) / sum(c[0] for c in v) for k, v in pooled.items()}
        wall = {k: samples * len(v) / sum(c[1] for c in v) for k, v in pooled.items()}
        print(f"\n{key}: {spec.describe()} (order {spec.order}); {probes} probes per run, "
              f"{len(pooled['plain'])} chunks per loop counted", flush=True)
        for k in ins.KINDS:
            print(f"  {k:8s} {cpu[k]:8.0f}  ({wall[k]:8.0f}) samples/s")
        for a, b in ins.RATIOS:
            print(f"  {a}/{b:9s} {cpu[a] / cpu[b]:.3f} ({wall[a] / wall[b]:.3f})   by round: "
                  + ", ".join(f"{r[f'{a}/{b}']:.3f}" for r in rounds), flush=True)
        print(f"  CPU time inside the probe's callbacks: {100 * sorted(shares)[len(shares) // 2]:.2f}%")
        worst = min(worst, cpu["session"] / cpu["plain"], cpu["probe"] / cpu["plain"], cpu["probe"] / cpu["plain-is"])
    print(f"\nworst session-or-probe/plain ratio (CPU time): {worst:.3f} (target >= 0.90)")
    stolen = (ins.steal_seconds() - steal0) / (time.monotonic() - wall0) / (os.cpu_count() or 1)
    print(f"CPU stolen by other guests of the host during the bench: {100 * stolen:.0f}%")


if __name__ == "__main__":
    main()

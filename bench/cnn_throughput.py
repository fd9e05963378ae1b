"""Training throughput of the small CNN preset at batch 32 on the CPU: the step before issue 21 against the run's.

Variants, each in a process of its own (its own malloc state), with a model built from the same
seed, trained on the same batches:
  old    plain autograd, NCHW, ``torch.optim.Adam`` with its defaults, glibc's malloc defaults:
         the step before issue 21;
  fused  the same with the fused Adam dlplay makes (dlplay.nn.optimizers.make_optimizer);
  cl     fused Adam, model and batches in channels-last memory format (with the gradient below the
         flatten handed back channels-last, dlplay.nn.model);
  mem    cl, plus freed memory kept for reuse (dlplay.run.memory.keep_freed_memory);
  run    dlplay's TrainingSession step as it trains the preset, in a process where a run has
         started (so keep_freed_memory is on, as in the app).

How it is timed: the variants take turns, ``--chunk`` steps each, the order rotating every cycle,
so they see the same drift of a shared VM's cores; the first chunk of each is a warm-up. Each
variant is built in its process's main thread and trains in a second thread, as a run in the app
(where memory freed between steps behaves differently from a single-threaded loop). Each
chunk is timed in the worker thread's own CPU time, which other processes on a shared machine
hardly disturb, with one torch thread (the default here); with more threads only the wall time
means anything, and both are shown. Rates are samples / summed time per variant and round.

    PYTHONPATH=. python bench/cnn_throughput.py [--rounds 3] [--chunks 12] [--chunk 10] [--threads 1] [--variants old,cl,run]

(PYTHONPATH=. from a worktree: the virtual environment may hold an editable install of another checkout.)
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("DLPLAY_DATA_DIR", str(REPO.parent / "shared" / "datasets" / "mnist-sample"))

BATCH = 32
VARIANTS = ("old", "fused", "cl", "mem", "run")


def worker(name: str, seed: int, steps: int, chunk: int, threads: int, conn) -> None:
    """One variant in its own process: built in its main thread and trained in a second thread, as
    in the app (the page's script thread makes the run, the run's thread trains it): time the chunks
    of steps the parent names."""
    import torch
    import torch.nn.functional as F

    from dlplay.classify.train import TrainingSession
    from dlplay.data.datasets import load_dataset
    from dlplay.nn.model import build_model
    from dlplay.nn.optimizers import make_optimizer
    from dlplay.nn.presets import PRESETS
    from dlplay.run.memory import keep_freed_memory

    if threads:
        torch.set_num_threads(threads)
    preset = PRESETS["small_cnn"]
    dataset = load_dataset("mnist", download=False)
    if name == "run":
        session = TrainingSession(preset.spec, preset.config, dataset, device="cpu")
        keep_freed_memory()  # what TrainingSession.start() does before its thread trains
        session._global_step = 0
        session.model.train()

        def step(x, y):
            return session._train_step(x, y)[0]
    else:
        model = build_model(preset.spec, seed=seed).train()
        channels_last = name in ("cl", "mem")
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        if name == "mem":
            keep_freed_memory()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3) if name == "old" else make_optimizer(
            "adam", model.parameters(), 1e-3, 0.0)

        def step(x, y):
            if channels_last:
                x = x.unsqueeze(1).contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss

    info = dataset.info
    images = dataset.train_images.float().div_(255.0).sub_(info.mean).div_(info.std)
    perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    data = []
    for i in range(steps):
        idx = perm[(i * BATCH) % (len(images) - BATCH):][:BATCH]
        data.append((torch.index_select(images, 0, idx), torch.index_select(dataset.train_labels, 0, idx)))

    def train_chunks() -> None:
        conn.send("ready")
        while (c := conn.recv()) is not None:
            t, w, f = time.thread_time(), time.perf_counter(), _faults()
            for x, y in data[c * chunk: (c + 1) * chunk]:
                loss = step(x, y)
            loss.item()
            conn.send((time.thread_time() - t, time.perf_counter() - w, _faults() - f))

    thread = threading.Thread(target=train_chunks, name="dlplay-train")
    thread.start()
    thread.join()


def _faults() -> int:
    """Minor page faults of this thread so far (Linux; 0 elsewhere)."""
    who = getattr(resource, "RUSAGE_THREAD", None)
    return resource.getrusage(who).ru_minflt if who is not None else 0


def one_round(variants, chunks: int, chunk: int, seed: int, threads: int) -> dict[str, tuple[float, float, float]]:
    """Per variant: samples/s by thread CPU time, by wall time, and page faults per step."""
    ctx = mp.get_context("spawn")
    pipes, procs = {}, []
    for name in variants:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=worker, args=(name, seed, chunks * chunk, chunk, threads, child), daemon=True)
        proc.start()
        pipes[name], procs = parent, [*procs, proc]
    for name in variants:
        if pipes[name].recv() != "ready":
            raise RuntimeError(name)
    cpu = dict.fromkeys(variants, 0.0)
    wall = dict.fromkeys(variants, 0.0)
    faults = dict.fromkeys(variants, 0)
    for c in range(chunks):
        order = variants[c % len(variants):] + variants[: c % len(variants)]
        for name in order:  # one at a time: the others wait on their pipes
            pipes[name].send(c)
            dt, dw, df = pipes[name].recv()
            if c > 0:  # the first chunk warms up
                cpu[name] += dt
                wall[name] += dw
                faults[name] += df
    for name in variants:
        pipes[name].send(None)
    for proc in procs:
        proc.join()
    samples = (chunks - 1) * chunk * BATCH
    steps = (chunks - 1) * chunk
    return {n: (samples / cpu[n], samples / wall[n], faults[n] / steps) for n in variants}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chunks", type=int, default=12, help="chunks per variant and round (first is warm-up)")
    parser.add_argument("--chunk", type=int, default=10, help="steps per chunk")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: PyTorch's default)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, 'old' first")
    args = parser.parse_args()
    variants = tuple(args.variants.split(","))
    if variants[0] != "old" or not set(variants) <= set(VARIANTS):
        parser.error(f"--variants: 'old' first, then any of {', '.join(VARIANTS)}")
    import torch

    threads = args.threads or torch.get_num_threads()
    clock = "thread CPU time" if threads == 1 else "wall time"
    print(f"small CNN preset, batch {BATCH}, {threads} torch threads per variant, torch {torch.__version__}, "
          f"{args.rounds} rounds x {args.chunks - 1} chunks x {args.chunk} steps per variant, a process each")
    print(f"rates in samples/s by {clock} per round, then the means")
    totals: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}
    i = 0 if clock != "wall time" else 1
    for r in range(args.rounds):
        rates = one_round(variants, args.chunks, args.chunk, seed=r, threads=args.threads)
        for name, rate in rates.items():
            totals[name].append(rate)
        print(f"round {r + 1}: " + ", ".join(
            f"{n} {rates[n][i]:.0f} ({rates[n][i] / rates['old'][i]:.2f}x)" for n in variants), flush=True)
    for j, label in ((0, "thread CPU time"), (1, "wall time")):
        if j == 0 and clock == "wall time":
            continue
        mean = {n: sum(v[j] for v in vs) / len(vs) for n, vs in totals.items()}
        print(f"mean samples/s by {label}: "
              + ", ".join(f"{n} {mean[n]:.0f} ({mean[n] / mean['old']:.2f}x old)" for n in variants))
    print("minor page faults per step: " + ", ".join(
        f"{n} {sum(v[2] for v in vs) / len(vs):.0f}" for n, vs in totals.items()))


if __name__ == "__main__":
    main()

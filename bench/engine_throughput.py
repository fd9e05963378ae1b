"""Throughput of a dlplay run (dense engine, probes on) against a plain eager PyTorch loop.

The tutorial's model (784-128-10, Adam, one torch thread) at batch 32 and 512, three loops on the
same data:
  plain      a plain eager PyTorch loop: pre-loaded normalised tensors, batches by ``x[idx]``,
             ``torch.optim.Adam`` with its defaults, ``loss.item()`` per step;
  dlplay     dlplay's TrainingSession as the app runs it: the dense engine (dlplay.nn.engine), uint8
             data normalised per batch, the probe (dlplay.classify.probe) at its default interval;
  autograd   the same TrainingSession forced onto autograd (``engine="autograd"``), probe on.

How it is timed: as in bench/instrumentation.py (read its doc). The loops run side by side in
threads that take turns through a baton, a chunk of about 1600 samples each, so that all see the
same CPU drift on a shared machine; each chunk is timed in the thread's own CPU time (wall time in
brackets). The training split is repeated ``--repeat`` times into one long epoch (the end-of-epoch
test pass is outside the timing), the first chunk of each loop is a warm-up. Targets (issue 21):
dlplay/plain >= 2.0 at batch 32 and >= 1.2 at batch 512.

    python bench/engine_throughput.py [--rounds 4] [--repeat 6] [--batches 32 512] [--every N]
    python bench/engine_throughput.py --session-rate [--batches 32] [--repeat 1]   # one run on its own:
        prints "samples/s N" (training-thread CPU time; bench/keras_tutorial.py --compare calls it)
"""
from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path

import torch

import instrumentation
from dlplay.classify.probe import DEFAULT_EVERY, Probe
from dlplay.classify.train import TrainingSession
from dlplay.data.datasets import load_dataset
from dlplay.nn.spec import TrainConfig, dense_spec
from instrumentation import Baton, BatonCallback, replicated, steal_seconds

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("DLPLAY_DATA_DIR", str(REPO.parent / "shared" / "datasets" / "mnist-sample"))

SPEC = dense_spec([128], "relu")  # the tutorial's 784-128-10
KINDS = ("plain", "dlplay", "autograd")
RATIOS = (("dlplay", "plain"), ("autograd", "plain"), ("dlplay", "autograd"))
TARGETS = {32: 2.0, 512: 1.2}
CHUNK_SAMPLES = 1600


def plain_loop(dataset, device, batch: int, baton: Baton, name: str, chunk: int) -> None:
    """A plain eager PyTorch loop over the epoch (see the module doc): instrumentation's, at this batch size."""
    instrumentation.plain_loop(SPEC, dataset, device, baton, name, chunk, batch=batch)


def session_run(dataset, device, batch: int, baton: Baton, name: str, chunk: int, engine: str, every: int) -> str:
    """One epoch through a TrainingSession with the probe; returns the engine that trained."""
    config = TrainConfig(optimizer="adam", lr=1e-3, batch_size=batch, epochs=1, seed=0)
    session = TrainingSession(SPEC, config, dataset, device, engine=engine,
                              callbacks=[Probe(every=every), BatonCallback(baton, name, chunk)])
    session.start()
    session.join()
    if session.status != "done":
        raise RuntimeError(f"session ended {session.status}: {session.snapshot().progress.message_params}")
    return session.engine_name


def interleaved_round(dataset, device, batch: int, every: int) -> tuple[Baton, dict[str, str]]:
    chunk = max(1, CHUNK_SAMPLES // batch)
    baton = Baton(list(KINDS))
    errors: list[BaseException] = []
    engines: dict[str, str] = {}

    def guarded(name: str, fn, *extra):
        def run():
            try:
                result = fn(dataset, device, batch, baton, name, chunk, *extra)
                if result:
                    engines[name] = result
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)
                baton.drop(name)
        return threading.Thread(target=run, name=f"bench-{name}", daemon=True)

    threads = [guarded("plain", plain_loop), guarded("dlplay", session_run, "auto", every),
               guarded("autograd", session_run, "autograd", every)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return baton, engines


class _ThreadClock:
    """TrainingSession callback: CPU seconds of the training thread from on_start to the last step."""

    def on_start(self, session) -> None:
        self.t0 = time.thread_time()

    def after_step(self, session, step: int) -> None:
        if step == session.total_steps:
            self.seconds = time.thread_time() - self.t0


def session_rate(dataset, device, batch: int, every: int) -> float:
    """Samples/s of one dlplay run (dense engine, probe on) over one epoch, by its thread's CPU time."""
    clock = _ThreadClock()
    config = TrainConfig(optimizer="adam", lr=1e-3, batch_size=batch, epochs=1, seed=0)
    session = TrainingSession(SPEC, config, dataset, device, callbacks=[Probe(every=every), clock])
    session.start()
    session.join()
    return session.total_steps and len(dataset.train_labels) / clock.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4, help="fresh models and runs per batch size, pooled")
    parser.add_argument("--repeat", type=int, default=6, help="training split repeated this often in the epoch")
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 512])
    parser.add_argument("--every", type=int, default=DEFAULT_EVERY, help="probe interval (steps)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--session-rate", action="store_true", help="time one dlplay run on its own and exit")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dataset = replicated(load_dataset("mnist", download=False), args.repeat).to(device)
    if args.session_rate:
        print(f"samples/s {session_rate(dataset, device, args.batches[0], args.every):.0f}")
        return
    print(f"784-128-10, Adam, device {device}, torch threads {torch.get_num_threads()}, one epoch of "
          f"{len(dataset.train_labels)} images, probe every {args.every} steps, {args.rounds} interleaved rounds, "
          f"{os.cpu_count()} CPUs (load average before: {os.getloadavg()[0]:.1f})")
    print("samples/s per CPU second of the training thread (wall-clock in brackets), counted chunks pooled")
    steal0, wall0 = steal_seconds(), time.monotonic()
    for batch in args.batches:
        pooled: dict[str, list[tuple[float, float]]] = {k: [] for k in KINDS}
        rounds, engines = [], {}
        for _ in range(args.rounds):
            baton, engines = interleaved_round(dataset, device, batch, args.every)
            n = min(len(c) for c in baton.chunks.values())
            for k in KINDS:
                pooled[k] += baton.chunks[k][1:n]  # the first chunk is the warm-up
            r = {k: sum(c[0] for c in baton.chunks[k][1:n]) for k in KINDS}
            rounds.append({f"{a}/{b}": r[b] / r[a] for a, b in RATIOS})
        samples = max(1, CHUNK_SAMPLES // batch) * batch
        cpu = {k: samples * len(v) / sum(c[0] for c in v) for k, v in pooled.items()}
        wall = {k: samples * len(v) / sum(c[1] for c in v) for k, v in pooled.items()}
        print(f"\nbatch {batch}  (engines: {engines}; {len(pooled['plain'])} chunks per loop counted)")
        for k in KINDS:
            print(f"  {k:9s} {cpu[k]:9.0f}  ({wall[k]:9.0f})")
        for a, b in RATIOS:
            print(f"  {a}/{b:9s} {cpu[a] / cpu[b]:.3f} ({wall[a] / wall[b]:.3f})   by round: "
                  + ", ".join(f"{r[f'{a}/{b}']:.3f}" for r in rounds))
        if batch in TARGETS:
            ratio = cpu["dlplay"] / cpu["plain"]
            print(f"  target dlplay/plain >= {TARGETS[batch]}: {ratio:.2f} {'met' if ratio >= TARGETS[batch] else 'NOT met'}")
    stolen = (steal_seconds() - steal0) / (time.monotonic() - wall0) / (os.cpu_count() or 1)
    print(f"\nCPU stolen by other guests of the host during the bench: {100 * stolen:.0f}%; "
          f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

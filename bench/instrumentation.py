"""Throughput cost of the dynamics probes (dlplay.classify.probe) on the training thread.

Compares samples/s of, for the same model, data and batch size 32 with Adam and one torch thread:
  plain     a bare PyTorch loop: pre-loaded normalised tensors, batches by x[idx], loss.item() per step;
  plain-is  the same with torch.index_select for the batches (the faster way on CPU, which dlplay uses);
  session   dlplay's TrainingSession without callbacks (uint8 data normalised per batch, as it trains);
  probe     the same TrainingSession with Probe() at its default interval (or --every).

How it is timed. On a shared VM the speed of a core drifts by 10-20% over seconds (another guest on
the sibling hyperthread, the host's caches), and slowly: chunks of 50 steps 70 ms apart correlate
0.9, runs a few seconds apart hardly at all. So whole runs one after the other cannot resolve a few
percent. Here the four loops run side by side in four threads that take turns: each trains
``--chunk`` steps, then hands a baton to the next (order rotating every cycle) and waits, so only
one trains at any moment and all four see the same drift. Each chunk is timed in the thread's own
CPU time (and wall time). One epoch over the training split repeated ``--repeat`` times, so that a
run has the probes of a real one (step 1, every ``every`` steps, the last step: with the default
6 x the 10k sample, one full-MNIST-sized epoch of 1875 steps); the first chunk of
each loop is a warm-up and not counted. Rates are total samples / total time per loop over all
rounds; each round (fresh models and runs) is also shown on its own, as its memory layout differs.

    python bench/instrumentation.py [--rounds 8] [--repeat 6] [--chunk 50] [--every N] [--device cpu]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import threading
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from dlplay.classify.callbacks import TrainingCallback
from dlplay.classify.probe import DEFAULT_EVERY, Probe
from dlplay.classify.train import TrainingSession
from dlplay.data.datasets import load_dataset
from dlplay.nn.model import build_model
from dlplay.nn.spec import ModelSpec, TrainConfig, dense_spec

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("DLPLAY_DATA_DIR", str(REPO.parent / "shared" / "datasets" / "mnist-sample"))


MODELS: dict[str, ModelSpec] = {
    "784-128-10 (tutorial)": dense_spec([128], "relu"),
    "784-256-128-64-32-10": dense_spec([256, 128, 64, 32], "relu"),
}
BATCH = 32
KINDS = ("plain", "plain-is", "session", "probe")
RATIOS = (("session", "plain"), ("probe", "plain"), ("probe", "plain-is"), ("probe", "session"))


def replicated(dataset, times: int):
    """The training split repeated ``times`` (one long epoch: no per-epoch test pass inside the timing)."""
    return dataclasses.replace(
        dataset,
        train_images=dataset.train_images.repeat(times, 1, 1),
        train_labels=dataset.train_labels.repeat(times),
    )


class Baton:
    """Lets several training threads take turns: one trains a chunk of steps while the others wait.

    Each thread calls ``enter(name)`` before its first step, ``turn(name)`` after every chunk and
    ``leave(name)`` after its last step; the baton records each chunk's thread CPU and wall time.
    In cycle c the threads go in the order of ``names`` rotated by c.
    """

    def __init__(self, names: list[str]):
        self.names = list(names)
        self.cond = threading.Condition()
        self.entered: set[str] = set()
        self.done: set[str] = set()
        self.cycle, self.pos = 0, 0
        self.chunks: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
        self._t0: dict[str, tuple[float, float]] = {}

    def _order(self) -> list[str]:
        k = self.cycle % len(self.names)
        return self.names[k:] + self.names[:k]

    def _current(self) -> str | None:
        """Whose turn it is (None until all have entered, or when all are done)."""
        if len(self.entered) < len(self.names):
            return None
        while len(self.done) < len(self.names):
            order = self._order()
            if self.pos >= len(order):
                self.cycle, self.pos = self.cycle + 1, 0
                continue
            if order[self.pos] not in self.done:
                return order[self.pos]
            self.pos += 1
        return None

    def _wait_turn(self, name: str) -> None:
        while self._current() != name:
            self.cond.wait()
        self._t0[name] = (time.thread_time(), time.perf_counter())

    def _record(self, name: str) -> None:
        cpu0, wall0 = self._t0[name]
        self.chunks[name].append((time.thread_time() - cpu0, time.perf_counter() - wall0))
        self.pos += 1
        self.cond.notify_all()

    def enter(self, name: str) -> None:
        with self.cond:
            self.entered.add(name)
            self.cond.notify_all()
            self._wait_turn(name)

    def turn(self, name: str) -> None:
        with self.cond:
            self._record(name)
            self._wait_turn(name)

    def drop(self, name: str) -> None:
        """A thread that failed: the others go on without it."""
        with self.cond:
            self.entered.add(name)
            self.done.add(name)
            self.cond.notify_all()

    def leave(self, name: str) -> None:
        with self.cond:
            if name in self.done:
                return
            self._record(name)
            self.done.add(name)
            self.cond.notify_all()


class BatonCallback(TrainingCallback):
    """TrainingSession callback: takes part in the baton's turns every ``chunk`` steps."""

    def __init__(self, baton: Baton, name: str, chunk: int):
        self.baton, self.name, self.chunk = baton, name, chunk

    def on_start(self, session: TrainingSession) -> None:
        self.baton.enter(self.name)

    def after_step(self, session: TrainingSession, step: int) -> None:
        if step == session.total_steps:
            self.baton.leave(self.name)  # before the end-of-epoch test pass
        elif step % self.chunk == 0:
            self.baton.turn(self.name)

    def on_end(self, session: TrainingSession) -> None:
        self.baton.leave(self.name)  # no-op unless the run ended early


class TimedProbe(Probe):
    """A Probe that also adds up the training thread's CPU time spent inside its own callbacks.

    Only the calls that do work are timed (a clock read costs ~1 us; the other calls are a
    comparison each and would mostly measure the clock)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.cpu_s = 0.0

    def _timed(self, method, *args) -> None:
        t0 = time.thread_time()
        method(*args)
        self.cpu_s += time.thread_time() - t0

    def after_backward(self, session, step) -> None:
        if step == self._armed_step:
            self._timed(super().after_backward, session, step)
        else:
            super().after_backward(session, step)

    def after_step(self, session, step) -> None:
        nxt = step + 1
        if step == self._armed_step or nxt % self.every == 0 or nxt == session.total_steps:
            self._timed(super().after_step, session, step)  # measures, or arms the next probe
        else:
            super().after_step(session, step)

    def on_sync(self, session) -> None:
        if self._pending:
            self._timed(super().on_sync, session)
        else:
            super().on_sync(session)


def steal_seconds() -> float:
    """CPU seconds the hypervisor gave to other guests while this machine wanted to run (Linux)."""
    try:
        with open("/proc/stat") as stat:
            values = stat.readline().split()[1:]
        return int(values[7]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def plain_loop(spec: ModelSpec, dataset, device: torch.device, baton: Baton, name: str, chunk: int,
               index_select: bool = False, batch: int = BATCH) -> None:
    """A bare PyTorch loop over one epoch: pre-normalised tensors, Adam, loss.item(); batches by
    ``x[idx]`` as most code writes it, or by ``torch.index_select`` (faster on CPU, as dlplay does)."""
    info = dataset.info
    x_all = ((dataset.train_images.to(device).float() / 255.0 - info.mean) / info.std).unsqueeze(1)
    y_all = dataset.train_labels.to(device)
    n = len(y_all)
    model = build_model(spec, seed=0).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0)).to(device)
    last = (n + batch - 1) // batch
    baton.enter(name)
    for step, i in enumerate(range(0, n, batch), start=1):
        idx = perm[i : i + batch]
        if index_select:
            x, y = torch.index_select(x_all, 0, idx), torch.index_select(y_all, 0, idx)
        else:
            x, y = x_all[idx], y_all[idx]
        out = model(x)
        loss = F.cross_entropy(out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()
        if step == last:
            baton.leave(name)
        elif step % chunk == 0:
            baton.turn(name)


def session_run(spec: ModelSpec, dataset, device: torch.device, baton: Baton, name: str, chunk: int,
                probe: Probe | None) -> None:
    """The same epoch through a TrainingSession (optionally with a probe); runs in its own thread."""
    config = TrainConfig(optimizer="adam", lr=1e-3, batch_size=BATCH, epochs=1, seed=0)
    callbacks = [c for c in (probe, BatonCallback(baton, name, chunk)) if c]  # the probe's work counts
    session = TrainingSession(spec, config, dataset, device, callbacks=callbacks)
    session.start()
    session.join()
    if session.status != "done":
        raise RuntimeError(f"session ended {session.status}: {session.snapshot().progress.message_params}")


def interleaved_round(spec: ModelSpec, dataset, device: torch.device, chunk: int, every: int):
    """One run of each loop, taking turns chunk by chunk; returns the baton and the probe."""
    baton = Baton(list(KINDS))
    probe = TimedProbe(every=every)
    errors: list[BaseException] = []

    def guarded(name: str, fn, *extra, **kwargs):
        def run():
            try:
                fn(spec, dataset, device, baton, name, chunk, *extra, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)
                baton.drop(name)
        return threading.Thread(target=run, daemon=True)

    threads = [
        guarded("plain", plain_loop),
        guarded("plain-is", plain_loop, index_select=True),
        guarded("session", session_run, None),
        guarded("probe", session_run, probe),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return baton, probe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=8, help="fresh models and runs per model, pooled")
    parser.add_argument("--repeat", type=int, default=6, help="training split repeated this often in the epoch")
    parser.add_argument("--chunk", type=int, default=50, help="steps a loop trains before it hands over")
    parser.add_argument("--every", type=int, default=DEFAULT_EVERY)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dataset = replicated(load_dataset("mnist", download=False), args.repeat).to(device)
    steps = (len(dataset.train_labels) + BATCH - 1) // BATCH
    print(f"device {device}, torch threads {torch.get_num_threads()}, batch {BATCH}, Adam, one epoch of "
          f"{len(dataset.train_labels)} images ({steps} steps), probe every {args.every} steps, loops take turns "
          f"every {args.chunk} steps, {args.rounds} rounds")
    print("samples/s per CPU second of the training thread (wall-clock in brackets), all counted chunks pooled")
    worst = float("inf")
    steal0, wall0 = steal_seconds(), time.monotonic()
    for name, spec in MODELS.items():
        pooled: dict[str, list[tuple[float, float]]] = {k: [] for k in KINDS}
        probes, shares, rounds = 0, [], []
        for _ in range(args.rounds):
            baton, probe = interleaved_round(spec, dataset, device, args.chunk, args.every)
            n = min(len(c) for c in baton.chunks.values())
            for k in KINDS:
                pooled[k] += baton.chunks[k][1:n]  # the first chunk is the warm-up
            probes = probe.snapshot().probes
            r = {k: sum(c[0] for c in baton.chunks[k][1:n]) for k in KINDS}  # CPU seconds
            rounds.append({f"{a}/{b}": r[b] / r[a] for a, b in RATIOS})
            shares.append(probe.cpu_s / sum(c[0] for c in baton.chunks["probe"]))
        samples = args.chunk * BATCH
        cpu = {k: samples * len(v) / sum(c[0] for c in v) for k, v in pooled.items()}
        wall = {k: samples * len(v) / sum(c[1] for c in v) for k, v in pooled.items()}
        print(f"\n{name}  ({probes} probes per run, {len(pooled['plain'])} chunks per loop counted)")
        for k in KINDS:
            print(f"  {k:8s} {cpu[k]:8.0f}  ({wall[k]:8.0f})")

        for a, b in RATIOS:
            print(f"  {a}/{b:9s} {cpu[a] / cpu[b]:.3f} ({wall[a] / wall[b]:.3f})   by round: "
                  + ", ".join(f"{r[f'{a}/{b}']:.3f}" for r in rounds))
        share = statistics.median(shares)
        print(f"  CPU time inside the probe's callbacks: {100 * share:.2f}% of the probe loop's CPU time")
        worst = min(worst, cpu["probe"] / cpu["plain"], cpu["probe"] / cpu["plain-is"])
    print(f"\nworst probe/plain ratio against either plain loop (CPU time): {worst:.3f} (target >= 0.90)")
    stolen = (steal_seconds() - steal0) / (time.monotonic() - wall0) / (os.cpu_count() or 1)
    print(f"CPU stolen by other guests of the host during the bench: {100 * stolen:.0f}%")


if __name__ == "__main__":
    main()

"""Throughput cost of the dynamics probes (dlplay.probe) on the training thread.

Compares samples/s of, for the same model, data and batch size 32 with Adam and one torch thread:
  plain     a bare PyTorch loop: pre-loaded normalised tensors, batches by x[idx], loss.item() per step;
  plain-is  the same with torch.index_select for the batches (the faster way on CPU, which dlplay uses);
  session dlplay's TrainingSession without callbacks;
  probe   the same TrainingSession with Probe() at its default interval (or --every).
Each run is one epoch over the training split repeated --repeat times, timed from the end of step 1
to the end of the last step inside the training thread, in thread CPU time (robust against other
processes on a shared machine) and in wall-clock time. Runs are interleaved over several rounds
(rotating their order); it prints the median rates and the median of the per-round ratios (many
short rounds: on a shared machine single runs vary by +-20%, paired ratios far less).

    python bench/instrumentation.py [--rounds 16] [--repeat 1] [--every N] [--device cpu]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DLPLAY_DATA_DIR", str(REPO.parent / "shared" / "datasets" / "mnist-sample"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from dlplay.data import load_dataset  # noqa: E402
from dlplay.model import build_model  # noqa: E402
from dlplay.probe import DEFAULT_EVERY, Probe  # noqa: E402
from dlplay.spec import ModelSpec, TrainConfig, dense_spec  # noqa: E402
from dlplay.train import TrainingSession  # noqa: E402

MODELS: dict[str, ModelSpec] = {
    "784-128-10 (tutorial)": dense_spec([128], "relu"),
    "784-256-128-64-32-10": dense_spec([256, 128, 64, 32], "relu"),
}
BATCH = 32
KINDS = ("plain", "plain-is", "session", "probe")


def replicated(dataset, times: int):
    """The training split repeated ``times`` (one long epoch: no per-epoch test pass inside the timing)."""
    return dataclasses.replace(
        dataset,
        train_images=dataset.train_images.repeat(times, 1, 1),
        train_labels=dataset.train_labels.repeat(times),
    )


class StepClock:
    """Thread CPU time and wall time from the end of step 1 to the end of the last step."""

    def __init__(self) -> None:
        self.start = self.end = (0.0, 0.0)
        self.steps = 0

    def tick(self, step: int, last: int) -> None:
        if step == 1:
            self.start = (time.thread_time(), time.perf_counter())
        if step == last:
            self.end = (time.thread_time(), time.perf_counter())
            self.steps = last - 1

    def after_step(self, session: TrainingSession, step: int) -> None:  # as a session callback
        self.tick(step, session.total_steps)

    def rates(self) -> tuple[float, float]:
        """(samples per CPU second of the training thread, samples per wall second)."""
        n = self.steps * BATCH
        return n / (self.end[0] - self.start[0]), n / (self.end[1] - self.start[1])


class TimedProbe(Probe):
    """A Probe that also adds up the training thread's CPU time spent inside its own callbacks."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.cpu_s = 0.0

    def _timed(self, method, *args) -> None:
        t0 = time.thread_time()
        method(*args)
        self.cpu_s += time.thread_time() - t0

    def after_backward(self, session, step) -> None:
        self._timed(super().after_backward, session, step)

    def after_step(self, session, step) -> None:
        self._timed(super().after_step, session, step)

    def on_sync(self, session) -> None:
        self._timed(super().on_sync, session)


def steal_seconds() -> float:
    """CPU seconds the hypervisor gave to other guests while this machine wanted to run (Linux)."""
    try:
        values = open("/proc/stat").readline().split()[1:]
        return int(values[7]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def plain_loop(spec: ModelSpec, dataset, device: torch.device, index_select: bool = False) -> tuple[float, float]:
    """A bare PyTorch loop over one epoch: pre-normalised tensors, Adam, loss.item(); batches by
    ``x[idx]`` as most code writes it, or by ``torch.index_select`` (faster on CPU, as dlplay does)."""
    info = dataset.info
    x_all = ((dataset.train_images.to(device).float() / 255.0 - info.mean) / info.std).unsqueeze(1)
    y_all = dataset.train_labels.to(device)
    n = len(y_all)
    model = build_model(spec, seed=0).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0)).to(device)
    clock, last = StepClock(), (n + BATCH - 1) // BATCH
    for step, i in enumerate(range(0, n, BATCH), start=1):
        idx = perm[i : i + BATCH]
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
        clock.tick(step, last)
    return clock.rates()


def session_run(spec: ModelSpec, dataset, device: torch.device, probe: Probe | None) -> tuple[float, float]:
    """The same epoch through a TrainingSession (optionally with a probe), timed inside its thread.

    With a TimedProbe, its ``share`` (CPU time in the probe / CPU time of the timed steps) is set."""
    config = TrainConfig(optimizer="adam", lr=1e-3, batch_size=BATCH, epochs=1, seed=0)
    clock = StepClock()
    session = TrainingSession(spec, config, dataset, device, callbacks=[c for c in (probe, clock) if c])
    session.start()
    session.join()
    if session.status != "done":
        raise RuntimeError(f"session ended {session.status}: {session.snapshot().progress.message_params}")
    if isinstance(probe, TimedProbe):
        probe.share = probe.cpu_s / (clock.end[0] - clock.start[0])
    return clock.rates()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=1, help="training split repeated this often in the epoch")
    parser.add_argument("--every", type=int, default=DEFAULT_EVERY)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dataset = replicated(load_dataset("mnist", download=False), args.repeat).to(device)
    steps = (len(dataset.train_labels) + BATCH - 1) // BATCH
    print(f"device {device}, torch threads {torch.get_num_threads()}, batch {BATCH}, Adam, one epoch of "
          f"{len(dataset.train_labels)} images ({steps} steps), probe every {args.every} steps, {args.rounds} rounds")
    print("samples/s per CPU second of the training thread (wall-clock samples/s in brackets), medians over rounds")
    worst = float("inf")
    steal0, wall0 = steal_seconds(), time.monotonic()
    for name, spec in MODELS.items():
        plain_loop(spec, dataset, device)  # warm-up
        runs: dict[str, list[tuple[float, float]]] = {k: [] for k in KINDS}
        probes, shares = 0, []
        for r in range(args.rounds):  # interleaved (order rotating), so that load changes hit all three alike
            for kind in KINDS[r % len(KINDS):] + KINDS[: r % len(KINDS)]:
                if kind.startswith("plain"):
                    runs[kind].append(plain_loop(spec, dataset, device, index_select=kind == "plain-is"))
                elif kind == "session":
                    runs["session"].append(session_run(spec, dataset, device, None))
                else:
                    probe = TimedProbe(every=args.every)
                    runs["probe"].append(session_run(spec, dataset, device, probe))
                    probes = probe.snapshot().probes
                    shares.append(probe.share)
        cpu = {k: statistics.median(r[0] for r in v) for k, v in runs.items()}
        wall = {k: statistics.median(r[1] for r in v) for k, v in runs.items()}
        print(f"\n{name}  ({probes} probes per run)")
        for k in runs:
            print(f"  {k:8s} {cpu[k]:8.0f}  ({wall[k]:8.0f})   rounds: {', '.join(f'{r[0]:.0f}' for r in runs[k])}")

        def paired(a: str, b: str, i: int) -> float:
            """Median over rounds of the ratio within a round (robust to slow changes of the load)."""
            return statistics.median(x[i] / y[i] for x, y in zip(runs[a], runs[b]))

        ratios = {f"{a}/{b}": (paired(a, b, 0), paired(a, b, 1))
                  for a, b in (("session", "plain"), ("probe", "plain"), ("probe", "plain-is"), ("probe", "session"))}
        print("  per-round ratios, median: " + "   ".join(f"{k} {c:.3f} ({w:.3f})" for k, (c, w) in ratios.items()))
        share = statistics.median(shares)
        print(f"  CPU time inside the probe's callbacks: {100 * share:.2f}% of the training thread's step time "
              f"(rounds: {', '.join(f'{100 * x:.2f}' for x in shares)}); "
              f"so probe/plain = session/plain x {1 - share:.3f} = {ratios['session/plain'][0] * (1 - share):.3f}")
        worst = min(worst, ratios["probe/plain"][0], ratios["probe/plain-is"][0])
    print(f"\nworst probe/plain ratio against either plain loop (CPU time): {worst:.3f} (target >= 0.90)")
    stolen = (steal_seconds() - steal0) / (time.monotonic() - wall0) / (os.cpu_count() or 1)
    print(f"CPU stolen by other guests of the host during the bench: {100 * stolen:.0f}% "
          "(above a few percent, single rounds vary a lot: trust the per-round ratios)")


if __name__ == "__main__":
    main()

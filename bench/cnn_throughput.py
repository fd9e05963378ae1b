"""Training throughput of the small CNN preset at batch 32 on the CPU: the old path against the run's.

Variants, each with its own model built from the same seed, trained on the same batches:
  old       plain autograd, NCHW, ``torch.optim.Adam`` with its defaults (the step before issue 21);
  fused     the same with the fused Adam dlplay makes (dlplay.optimizers.make_optimizer);
  cl        fused Adam, model (and batches) in channels-last memory format;
  cl-nomkl  the same with ``torch.backends.mkldnn`` switched off (PyTorch's own conv kernels);
  run       dlplay's TrainingSession step as it trains the preset (whatever the run chooses).

How it is timed: the variants take turns in one thread, ``--chunk`` steps each, the order rotating
every cycle, so they see the same drift of a shared VM's cores; the first chunk of each is a
warm-up. With one torch thread (the default here) each chunk is timed in the thread's own CPU time,
which other processes on a shared machine hardly disturb; wall time is shown too (with more threads
only wall time means anything). Rates are samples / summed time per variant and round.

    PYTHONPATH=. python bench/cnn_throughput.py [--rounds 3] [--chunks 12] [--chunk 10] [--threads 1] [--variants old,cl,run]

(PYTHONPATH=. from a worktree: the virtual environment may hold an editable install of another checkout.)
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("DLPLAY_DATA_DIR", str(REPO.parent / "shared" / "datasets" / "mnist-sample"))

from dlplay.data import load_dataset  # noqa: E402
from dlplay.model import build_model  # noqa: E402
from dlplay.optimizers import make_optimizer  # noqa: E402
from dlplay.presets import PRESETS  # noqa: E402
from dlplay.train import TrainingSession  # noqa: E402

BATCH = 32
VARIANTS = ("old", "fused", "cl-nomkl", "cl", "run")


class Loop:
    """One variant: a model, its optimiser and a step function over the shared batches."""

    def __init__(self, name: str, spec, dataset, seed: int):
        self.name = name
        self.seconds = 0.0
        self.wall = 0.0
        self.samples = 0
        self.mkldnn = name != "cl-nomkl"
        if name == "run":
            config = PRESETS["small_cnn"].config
            self.session = TrainingSession(spec, config, dataset, device="cpu")
            self.session._global_step = 0
            self.session.model.train()
            self.step = self._session_step
            return
        self.model = build_model(spec, seed=seed).train()
        self.channels_last = name.startswith("cl")
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if name == "old":
            self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        else:
            self.opt = make_optimizer("adam", self.model.parameters(), 1e-3, 0.0)
        self.step = self._step

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.unsqueeze(1).contiguous(memory_format=torch.channels_last)
        out = self.model(x)
        loss = F.cross_entropy(out, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss

    def _session_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.session._train_step(x, y)[0]


def batches(dataset, n: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    info = dataset.info
    images = dataset.train_images.float().div_(255.0).sub_(info.mean).div_(info.std)
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(images), generator=gen)
    out = []
    for i in range(n):
        idx = perm[(i * BATCH) % (len(images) - BATCH):][:BATCH]
        out.append((torch.index_select(images, 0, idx), torch.index_select(dataset.train_labels, 0, idx)))
    return out


def one_round(spec, dataset, chunks: int, chunk: int, seed: int, variants=VARIANTS) -> dict[str, tuple[float, float]]:
    loops = [Loop(name, spec, dataset, seed) for name in variants]
    data = batches(dataset, chunks * chunk, seed)
    for c in range(chunks):
        order = loops[c % len(loops):] + loops[: c % len(loops)]
        for loop in order:
            torch.backends.mkldnn.enabled = loop.mkldnn
            t, w = time.thread_time(), time.perf_counter()
            for x, y in data[c * chunk: (c + 1) * chunk]:
                loss = loop.step(x, y)
            loss.item()
            dt, dw = time.thread_time() - t, time.perf_counter() - w
            if c > 0:  # the first chunk warms up
                loop.seconds += dt
                loop.wall += dw
                loop.samples += chunk * BATCH
    torch.backends.mkldnn.enabled = True
    return {loop.name: (loop.samples / loop.seconds, loop.samples / loop.wall) for loop in loops}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chunks", type=int, default=12, help="chunks per variant and round (first is warm-up)")
    parser.add_argument("--chunk", type=int, default=10, help="steps per chunk")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: PyTorch's default)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, 'old' first")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = "thread CPU time" if torch.get_num_threads() == 1 else "wall time"
    spec = PRESETS["small_cnn"].spec
    dataset = load_dataset("mnist", download=False)
    print(f"small CNN preset, batch {BATCH}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"{args.rounds} rounds x {args.chunks - 1} chunks x {args.chunk} steps per variant")
    print(f"rates in samples/s by {clock} per round, then the means")
    variants = tuple(args.variants.split(","))
    if variants[0] != "old" or not set(variants) <= set(VARIANTS):
        parser.error(f"--variants: 'old' first, then any of {', '.join(VARIANTS)}")
    totals: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for r in range(args.rounds):
        rates = one_round(spec, dataset, args.chunks, args.chunk, seed=r, variants=variants)
        for name, rate in rates.items():
            totals[name].append(rate)
        i = 0 if clock != "wall time" else 1
        print(f"round {r + 1}: " + ", ".join(
            f"{n} {rates[n][i]:.0f} ({rates[n][i] / rates['old'][i]:.2f}x)" for n in variants))
    for i, label in ((0, "thread CPU time"), (1, "wall time")):
        if i == 0 and clock == "wall time":
            continue
        mean = {n: sum(v[i] for v in vs) / len(vs) for n, vs in totals.items()}
        print(f"mean samples/s by {label}: "
              + ", ".join(f"{n} {mean[n]:.0f} ({mean[n] / mean['old']:.2f}x old)" for n in variants))


if __name__ == "__main__":
    main()

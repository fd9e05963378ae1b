"""Throughput of dlplay's training thread vs a plain PyTorch loop on the same data, model and batch.

Run: python bench/train_throughput.py [--epochs 3] [--batch 32] [--repeats 3]
Prints samples/s (median of repeats) and the ratio dlplay / plain. The plain loop is the fastest
simple PyTorch loop: pre-normalised float tensors, index slicing, loss.item() per step.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from dlplay.classify.train import TrainingSession
from dlplay.data.datasets import load_dataset
from dlplay.nn.model import build_model
from dlplay.nn.spec import TrainConfig, dense_spec
from dlplay.run.device import choose_device

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("DLPLAY_DATA_DIR", str(REPO.parent / "shared" / "datasets" / "mnist-sample"))


def plain_loop(ds, spec, cfg, device, item_per_step: bool = True) -> float:
    """Samples/s of the plain loop; ``item_per_step=False`` drops the per-step loss.item() (on a GPU
    a host sync per step), for the strictest baseline there."""
    model = build_model(spec, seed=cfg.seed).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    x = ((ds.train_images.float() / 255 - ds.info.mean) / ds.info.std).to(device)
    y = ds.train_labels.to(device)
    n = len(y)
    start = time.perf_counter()
    for _ in range(cfg.epochs):
        perm = torch.randperm(n, device=device)
        for i in range(0, n, cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if item_per_step:
                loss.item()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return cfg.epochs * n / (time.perf_counter() - start)


def dlplay_thread(ds, spec, cfg, device) -> float:
    session = TrainingSession(spec, cfg, ds, device)
    session.evaluate = lambda *a, **k: (0.0, 0.0)  # time the training steps only, like the plain loop
    start = time.perf_counter()
    session.start()
    session.join()
    assert session.status == "done", session.snapshot().progress
    return cfg.epochs * len(ds.train_labels) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, nargs="+", default=[32, 128])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = choose_device(args.device)
    ds = load_dataset("mnist", download=False).to(device)
    print(f"device={device} threads={torch.get_num_threads()} train={len(ds.train_labels)} epochs={args.epochs}")
    for hidden in ([128], [256, 128, 64, 32]):
        spec = dense_spec(hidden)
        for batch in args.batch:
            cfg = TrainConfig(epochs=args.epochs, batch_size=batch)
            plain, ours = [], []
            for _ in range(args.repeats):  # interleaved so drift hits both alike
                plain.append(plain_loop(ds, spec, cfg, device))
                ours.append(dlplay_thread(ds, spec, cfg, device))
            p, o = statistics.median(plain), statistics.median(ours)
            name = "784-" + "-".join(map(str, hidden)) + "-10"
            print(f"{name:24s} batch {batch:4d}: plain {p:9,.0f}/s  dlplay {o:9,.0f}/s  ratio {o / p:.2f}")


if __name__ == "__main__":
    main()

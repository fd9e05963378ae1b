"""The training path on a CUDA GPU: correctness, host synchronisations per step, and speed.

For the tutorial model and the small-CNN preset, on the real MNIST sample (DLPLAY_DATA_DIR):
  1. a TrainingSession with the probe attached trains on the GPU: status, test accuracy, probes;
     a checkpoint saved from it loads on the CPU and gives the same outputs;
  2. host synchronisations, counted with torch.cuda.set_sync_debug_mode("warn") over a whole run:
     the loop should sync only at its flushes (every 50 steps), the probe's copies and the
     per-epoch test pass, never once per step;
  3. samples/s (wall clock) of the session, with and without the probe, against the plain PyTorch
     loop of bench/train_throughput.py on the same device (pre-normalised float tensors, x[idx]
     batches), here without its .item() per step, median of --repeats runs each;
  4. CUDA graphs (dlplay/run/cudagraph.py): samples/s of the session (probe on, as the app runs it) with
     and without them, in interleaved rounds (the order alternates), medians and their ratio, with
     how many steps were replayed; and whether they train the same: after --graph-steps steps from
     the same seed, the weights with and without graphs agree within 1% of how far they moved
     (the dense engine's bound against autograd, tests/test_engine.py; the same kernels on the same
     batches and dropout masks should agree far closer). On the CPU this part is skipped.

    python bench/cuda_check.py [--epochs 3] [--repeats 3] [--graph-steps 200] [--device cuda]

Needs torch and numpy only (no Streamlit or Plotly), so it runs on a bare GPU machine: there,
`pip install --no-deps -e .` (or PYTHONPATH=.) makes dlplay importable without its other needs.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from dlplay.classify.checkpoint import checkpoint_from_session, load_checkpoint
from dlplay.classify.probe import M, Probe
from dlplay.classify.train import TrainingSession
from dlplay.data.datasets import load_dataset
from dlplay.nn.model import build_model
from dlplay.nn.presets import PRESETS
from train_throughput import plain_loop  # (bench/train_throughput.py)

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("DLPLAY_DATA_DIR", str(REPO.parent / "shared" / "datasets" / "mnist-sample"))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


GRAPH_TOLERANCE = 0.01  # of the largest distance a weight moved (see the module doc, part 4)


def session_run(spec, config, dataset, device, probe: bool, cuda_graph: str = "auto") -> tuple[TrainingSession, float]:
    """A finished session and its training samples/s (wall clock, test passes excluded)."""
    session = TrainingSession(spec, config, dataset, device, callbacks=[Probe()] if probe else [],
                              cuda_graph=cuda_graph)
    session.start()
    session.join()
    synchronize(device)
    if session.status != "done":
        raise RuntimeError(f"run ended {session.status}: {session.snapshot().progress}")
    epochs = session.snapshot().epochs
    return session, session.train_size * len(epochs) / sum(e.seconds for e in epochs)


def count_syncs(spec, config, dataset, device) -> tuple[int, int]:
    """(host synchronisations the sync debug mode reported during one run with the probe, steps)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            session, _ = session_run(spec, config, dataset, device, probe=True)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = sum("synchroniz" in str(w.message).lower() for w in caught)
    return syncs, session.total_steps


def graph_counts(session: TrainingSession) -> str:
    step = session.cuda_graph
    if step is None:
        return f"no graphs ({session.snapshot().progress.cuda_graph or 'off'})"
    return (f"{step.replays} replayed, {step.eager_steps} eager, {step.warmups} warm-up steps, "
            f"{step.captures} capture(s), state {step.state}{' ' + step.error if step.error else ''}")


def graph_speed(spec, config, dataset, device, repeats: int) -> tuple[float, float, str]:
    """Median samples/s without and with CUDA graphs (probe on), in interleaved rounds."""
    rates: dict[str, list[float]] = {"off": [], "auto": []}
    counts = ""
    for r in range(repeats):
        for mode in ("off", "auto") if r % 2 == 0 else ("auto", "off"):
            session, rate = session_run(spec, config, dataset, device, probe=True, cuda_graph=mode)
            rates[mode].append(rate)
            if mode == "auto":
                counts = graph_counts(session)
    return statistics.median(rates["off"]), statistics.median(rates["auto"]), counts


def graph_agreement(spec, config, dataset, device, steps: int) -> tuple[float, float, str]:
    """(largest |w_graphs − w_eager| / largest distance a weight moved, that difference, counts) after
    ``steps`` steps from the same seed and batches (one epoch of ``steps`` full batches, no probe)."""
    config = dataclasses.replace(config, epochs=1, train_size=steps * config.batch_size, val_share=0.0)
    eager, _ = session_run(spec, config, dataset, device, probe=False, cuda_graph="off")
    graphed, _ = session_run(spec, config, dataset, device, probe=False, cuda_graph="auto")
    start = build_model(spec, seed=config.seed).state_dict()
    a, b = eager.state_dict(), graphed.state_dict()
    moved = max(float((a[k].float() - start[k].float()).abs().max()) for k in a if a[k].is_floating_point())
    diff = max(float((a[k].float() - b[k].float()).abs().max()) for k in a if a[k].is_floating_point())
    return diff / max(moved, 1e-30), diff, graph_counts(graphed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--graph-steps", type=int, default=200)
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device here: run on a machine with an NVIDIA GPU (or pass --device cpu for a dry run)")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"torch {torch.__version__}, device {device} ({name})")
    dataset = load_dataset("mnist", download=False).to(device)
    print(f"MNIST sample on {dataset.device}: {len(dataset.train_labels)} train, {len(dataset.test_labels)} test, "
          f"{dataset.train_images.dtype}")
    failures = []
    for key in ("tutorial", "small_cnn"):
        preset = PRESETS[key]
        config = dataclasses.replace(preset.config, epochs=args.epochs, device=device.type)
        print(f"\n{key}: {args.epochs} epochs, batch {config.batch_size}, {config.optimizer} lr {config.lr}, "
              f"schedule {config.schedule}")
        # 1. correctness
        session, _ = session_run(preset.spec, config, dataset, device, probe=True)
        acc = session.snapshot().epochs[-1].test_acc
        probe = session.snapshot().extras["probe"]
        finite = bool(np.isfinite(probe.values[:, :, M["grad_w"]]).all())
        data = checkpoint_from_session(session)
        ckpt = load_checkpoint(data)
        x = session.normalize(dataset.test_images[:200])
        with torch.no_grad():
            gpu_out = session.model_copy(device)(x).cpu()
            cpu_out = ckpt.model("cpu")(x.cpu())
        same = torch.allclose(gpu_out, cpu_out, atol=1e-3, rtol=1e-3)
        print(f"  trained: status {session.status}, test accuracy {acc:.2%}, {probe.probes} probes "
              f"(gradients finite: {finite}); checkpoint {len(data) / 1e6:.2f} MB loads on the CPU, "
              f"same outputs: {same} (max diff {float((gpu_out - cpu_out).abs().max()):.1e})")
        if session.status != "done" or not finite or not same or acc < 0.9:
            failures.append(f"{key}: training or checkpoint check failed")
        # 2. host synchronisations
        if device.type == "cuda":
            syncs, steps = count_syncs(preset.spec, config, dataset, device)
            print(f"  host synchronisations in a run with the probe: {syncs} for {steps} steps "
                  f"({syncs / steps:.3f} per step; flushes alone are {steps / 50:.0f})")
            if syncs >= steps / 2:
                failures.append(f"{key}: {syncs} syncs for {steps} steps")
        # 3. speed
        rates: dict[str, list[float]] = {"plain": [], "session": [], "probe": []}
        for _ in range(args.repeats):
            rates["plain"].append(plain_loop(dataset, preset.spec, config, device, item_per_step=False))
            rates["session"].append(session_run(preset.spec, config, dataset, device, probe=False)[1])
            rates["probe"].append(session_run(preset.spec, config, dataset, device, probe=True)[1])
        med = {k: statistics.median(v) for k, v in rates.items()}
        print(f"  samples/s (median of {args.repeats}): "
              + ", ".join(f"{k} {v:,.0f}" for k, v in med.items())
              + f"; session/plain {med['session'] / med['plain']:.3f}, probe/plain {med['probe'] / med['plain']:.3f}")
        # 4. CUDA graphs
        if device.type != "cuda":
            print("  CUDA graphs: skipped (they need a CUDA device; a run on the CPU never uses them)")
            continue
        off, on, counts = graph_speed(preset.spec, config, dataset, device, args.repeats)
        print(f"  CUDA graphs, samples/s with the probe (median of {args.repeats}, interleaved): without {off:,.0f}, "
              f"with {on:,.0f}, ratio {on / off:.3f}; last run with graphs: {counts}")
        share, diff, counts = graph_agreement(preset.spec, config, dataset, device, args.graph_steps)
        agree = share <= GRAPH_TOLERANCE
        print(f"  CUDA graphs vs eager after {args.graph_steps} steps, same seed: max weight difference {diff:.2e} "
              f"= {share:.2e} of the largest distance moved (bound {GRAPH_TOLERANCE}): "
              f"{'agree' if agree else 'DIFFER'}; {counts}")
        if not agree:
            failures.append(f"{key}: CUDA graphs train differently ({share:.2e} of the distance moved)")
        if "replayed" not in counts or counts.startswith("0 replayed"):
            failures.append(f"{key}: no step was replayed from a CUDA graph ({counts})")
    print("\nALL CHECKS PASSED" if not failures else "\nFAILED: " + "; ".join(failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

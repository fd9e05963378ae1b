"""Does augmentation help on drawn digits? Drawn-digit and test accuracy, trained with and without it.

Usage: python bench/augment_drawn.py [--seeds 0 1 2] [--epochs 10] [--level medium] [--hidden 128] [--threads 1]

The drawn digits are the Draw page's browser-test strokes (tests/test_e2e_draw.py: ten digits written
with the mouse as people write them), rendered like the canvas does (white strokes on a transparent
280×280 canvas) in 4 stroke widths × 4 slants × 2 aspect ratios, each with its own hand wobble
(320 drawings), then prepared by the Draw page's own preprocessing (dlplay.data.canvas.preprocess). Each model trains as the app does (TrainingSession)
on the 10k MNIST sample; the same seed with and without augmentation, several seeds.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from dlplay.classify.predict import predict_batch
from dlplay.classify.train import TrainingSession
from dlplay.data.augment import LEVELS
from dlplay.data.canvas import preprocess
from dlplay.data.datasets import load_dataset
from dlplay.nn.spec import TrainConfig, dense_spec

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("DLPLAY_DATA_DIR", str(REPO.parent / "shared" / "datasets" / "mnist-sample"))
sys.path.insert(0, str(REPO / "tests"))  # the stroke fixtures of the Draw page's browser test
from test_e2e_draw import DIGITS  # noqa: E402

CANVAS = 280
WIDTHS = (8, 14, 20, 28)  # px on the 280 px canvas; the Draw page's brush is 18
SLANTS = (-20.0, -7.0, 7.0, 20.0)  # degrees the whole drawing leans
ASPECTS = (0.7, 1.0)  # width / height: narrow writing and the strokes as they are
WOBBLE = 0.012  # hand tremor: each stroke point moves by about this share of the canvas (seeded)


def render(strokes, width: int, slant: float, aspect: float, rng: np.random.Generator) -> np.ndarray:
    """Strokes in a unit square -> the 28×28 digit the Draw page would make of them."""
    image = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    a = math.radians(slant)
    for stroke in strokes:
        points = []
        for x, y in stroke:
            x, y = (x - 0.5) * aspect, y - 0.5
            x, y = x * math.cos(a) - y * math.sin(a), x * math.sin(a) + y * math.cos(a)
            x, y = x + rng.normal(0, WOBBLE), y + rng.normal(0, WOBBLE)
            points.append((CANVAS / 2 + x * CANVAS * 0.8, CANVAS / 2 + y * CANVAS * 0.8))
        draw.line(points, fill=(255, 255, 255, 255), width=width, joint="curve")
        r = width / 2  # round caps, as the canvas draws them
        for px, py in (points[0], points[-1]):
            draw.ellipse([px - r, py - r, px + r, py + r], fill=(255, 255, 255, 255))
    out = preprocess(np.asarray(image)).image28
    assert out is not None
    return out


def drawn_set() -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    rng = np.random.default_rng(0)
    for digit, strokes in DIGITS.items():
        for width in WIDTHS:
            for slant in SLANTS:
                for aspect in ASPECTS:
                    images.append(render(strokes, width, slant, aspect, rng))
                    labels.append(digit)
    return np.stack(images), np.array(labels)


def train(dataset, config: TrainConfig, hidden: int):
    run = TrainingSession(dense_spec([hidden], "relu"), config, dataset, "cpu")
    run.start()
    run.join()
    assert run.status == "done", run.snapshot().progress
    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--level", default="medium", choices=[k for k in LEVELS if k != "off"])
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = load_dataset("mnist", download=False)
    images, labels = drawn_set()
    info = dataset.info
    print(f"{len(images)} drawn digits from {len(DIGITS)} stroke sets; model 784-{args.hidden}-10, adam 1e-3, "
          f"batch 32, {args.epochs} epochs on {len(dataset.train_labels):,} training images; level {args.level}: "
          f"{LEVELS[args.level]}")
    results: dict[str, list[tuple[float, float]]] = {"off": [], args.level: []}
    for seed in args.seeds:
        for name in results:
            started = time.perf_counter()
            config = TrainConfig(epochs=args.epochs, seed=seed, device="cpu", augment=LEVELS[name])
            run = train(dataset, config, args.hidden)
            guesses = predict_batch(run.model_copy(), images, info.mean, info.std).argmax(1)
            drawn = float((guesses == labels).mean())
            test = run.snapshot().epochs[-1].test_acc
            per_digit = {d: float((guesses[labels == d] == d).mean()) for d in DIGITS}
            results[name].append((drawn, test))
            print(f"seed {seed} {name:>7}: drawn {drawn:.1%}  test {test:.2%}  ({time.perf_counter() - started:.0f} s)  "
                  + " ".join(f"{d}:{v:.0%}" for d, v in per_digit.items()), flush=True)
    for name, rows in results.items():
        drawn = [r[0] for r in rows]
        test = [r[1] for r in rows]
        print(f"{name:>7}: drawn-digit accuracy mean {statistics.mean(drawn):.1%} (min {min(drawn):.1%}, "
              f"max {max(drawn):.1%}); test accuracy mean {statistics.mean(test):.2%}")


if __name__ == "__main__":
    main()

"""The seed tutorial's Keras code on the same MNIST sample, for the speed comparison of issue 21.

Not an app dependency: it runs in its own virtual environment (bench/requirements-keras.txt), e.g.

    python3 -m venv /work/venv-keras && /work/venv-keras/bin/pip install -r bench/requirements-keras.txt
    /work/venv-keras/bin/python bench/keras_tutorial.py [--epochs 3] [--threads 1] [--compare .venv/bin/python]

The model and training are the tutorial's: Flatten, Dense(128, relu), Dense(10, softmax), Adam,
sparse categorical cross-entropy, batch 32, pixels scaled to [0, 1]. Speed is samples/s per epoch
(median of the epochs after the first, which includes tracing), wall clock and process CPU time;
``--threads 1`` pins TensorFlow to one thread as dlplay's training thread is. With ``--compare
PYTHON``, each epoch is followed by one dlplay run of the same epoch (``bench/engine_throughput.py
--session-rate`` in that interpreter: dense engine, probe on, one torch thread), so both see the
same machine; the ratio dlplay/Keras is printed at the end (target >= 4).
"""
from __future__ import annotations

import argparse
import gzip
import os
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DLPLAY_DATA_DIR", REPO.parent / "shared" / "datasets" / "mnist-sample"))


def read_idx(path: Path) -> np.ndarray:
    """An IDX file of unsigned bytes (gzipped or not) as a numpy array."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load(split: str) -> tuple[np.ndarray, np.ndarray]:
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(DATA / f"{prefix}-images-idx3-ubyte.gz").astype("float32") / 255.0
    y = read_idx(DATA / f"{prefix}-labels-idx1-ubyte.gz").astype("int64")
    return x, y


def dlplay_rate(python: str, batch: int) -> float:
    out = subprocess.run([python, str(REPO / "bench" / "engine_throughput.py"), "--session-rate", "--repeat", "1",
                          "--batches", str(batch)], capture_output=True, text=True, check=True, cwd=REPO).stdout
    return float(out.split("samples/s")[-1].split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow intra- and inter-op threads (0: its default)")
    parser.add_argument("--compare", metavar="PYTHON", help="dlplay's interpreter: alternate with dlplay runs")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    from tensorflow import keras

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    x_train, y_train = load("train")
    x_test, y_test = load("test")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(shape=(28, 28)),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, threads {args.threads or 'default'}, "
          f"{len(y_train)} training images, batch {args.batch}")
    wall, cpu, ours = [], [], []
    for epoch in range(args.epochs):
        t0, c0 = time.perf_counter(), time.process_time()
        model.fit(x_train, y_train, epochs=1, batch_size=args.batch, verbose=0)
        wall.append(len(y_train) / (time.perf_counter() - t0))
        cpu.append(len(y_train) / (time.process_time() - c0))
        line = f"epoch {epoch + 1}: Keras {wall[-1]:8.0f} samples/s wall, {cpu[-1]:8.0f} per CPU second"
        if args.compare:
            ours.append(dlplay_rate(args.compare, args.batch))
            line += f"   dlplay {ours[-1]:8.0f} samples/s (training-thread CPU)"
        print(line, flush=True)
    _, acc = model.evaluate(x_test, y_test, verbose=0)
    keras_wall, keras_cpu = statistics.median(wall[1:] or wall), statistics.median(cpu[1:] or cpu)
    print(f"Keras: {keras_wall:.0f} samples/s wall, {keras_cpu:.0f} per CPU second (median after the first epoch); "
          f"test accuracy {acc:.4f} after {args.epochs} epochs")
    if ours:
        mine = statistics.median(ours[1:] or ours)
        print(f"dlplay: {mine:.0f} samples/s; dlplay/Keras {mine / keras_wall:.2f} (wall), "
              f"{mine / keras_cpu:.2f} (CPU) — target >= 4")


if __name__ == "__main__":
    main()

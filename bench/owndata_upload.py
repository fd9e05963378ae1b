"""Upload of a ~20 MB zip of image folders on the My data page (dlplay/owndata.py): time and peak memory.

The zip is made here from real MNIST training digits of 3 classes, each scaled to 160x160 and saved as an
RGB PNG (so every image is resized and converted to grey, as a learner's photos would be), until the zip
is about 20 MB. Interleaved against a baseline that only unpacks every member (the floor: zipfile's own
reading, no decoding). Peak memory: tracemalloc's peak of Python allocations (numpy and Pillow buffers
included) during the call, and the process's peak resident memory at the end.

    DLPLAY_DATA_DIR=/work/shared/datasets/mnist-sample OMP_NUM_THREADS=1 nice -n 5 python bench/owndata_upload.py
"""
from __future__ import annotations

import io
import resource
import statistics
import time
import tracemalloc
import zipfile

import numpy as np
from PIL import Image

from dlplay import owndata
from dlplay.data import datasets as data
from dlplay.server.guardrails import Limits

TARGET_MB = 20
SIDE = 160
ROUNDS = 3


def make_zip(target_bytes: int) -> tuple[bytes, int]:
    mnist = data.load_dataset("mnist", download=False)
    images, labels = mnist.train_images.numpy(), mnist.train_labels.numpy()
    pools = {d: np.flatnonzero(labels == d) for d in (0, 1, 7)}
    out = io.BytesIO()
    n = 0
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        while out.tell() < target_bytes:
            digit = (0, 1, 7)[n % 3]
            i = pools[digit][(n // 3) % len(pools[digit])]
            big = Image.fromarray(images[i]).resize((SIDE, SIDE), Image.Resampling.BICUBIC).convert("RGB")
            png = io.BytesIO()
            big.save(png, format="PNG")
            archive.writestr(f"digits/{digit}/{n:05d}.png", png.getvalue())
            n += 1
    return out.getvalue(), n


def unpack_only(raw: bytes) -> int:
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        return sum(len(archive.read(info)) for info in archive.infolist())


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def peak_memory(fn, *args) -> int:
    """Peak of Python allocations during the call (a separate run: tracemalloc slows every allocation)."""
    tracemalloc.start()
    fn(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> None:
    raw, n = make_zip(TARGET_MB * 2**20)
    limits = owndata.OwnLimits.from_limits(Limits())
    print(f"zip: {len(raw) / 2**20:.1f} MB, {n} RGB PNGs of {SIDE}x{SIDE} in 3 class folders")
    read_s, base_s = [], []
    for _ in range(ROUNDS):  # interleaved: baseline, then the real read
        base_s.append(timed(unpack_only, raw))
        read_s.append(timed(owndata.read_upload, raw, "bench.zip", limits))
    read_peak = [peak_memory(owndata.read_upload, raw, "bench.zip", limits)]
    own = owndata.read_upload(raw, "bench.zip", limits)
    print(f"read_upload (unpack, decode, grey 28x28, checks): median {statistics.median(read_s):.2f} s "
          f"({1e3 * statistics.median(read_s) / n:.2f} ms per image; runs {', '.join(f'{s:.2f}' for s in read_s)})")
    print(f"baseline unpack only: median {statistics.median(base_s):.2f} s; ratio {statistics.median(read_s) / statistics.median(base_s):.1f}x")
    print(f"peak Python memory during read_upload: {max(read_peak) / 2**20:.1f} MB "
          f"({max(read_peak) / len(raw):.2f}x the zip); result {own.images.nbytes / 2**20 if own.images is not None else 0:.1f} MB")
    print(f"process peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    print("notes:", [n.key for n in own.notes])


if __name__ == "__main__":
    main()

"""The Deploy page's load test on this machine: requests/s and p50/p95/p99 latency at 1, 4 and 16
concurrent clients against the local inference server (dlplay/export/serve.py: ONNX Runtime behind
Starlette + Uvicorn, one process, one ORT thread), for the tutorial MLP and the small CNN preset.

Baseline, interleaved with each round: the same ONNX model called directly in this process (ONNX
Runtime's session.run on one image, no HTTP, no JSON), so the ratio says what the web server costs.

    python bench/serve_load.py [--seconds 3] [--rounds 2]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import onnxruntime as ort

from dlplay.classify.checkpoint import export_onnx
from dlplay.export import serve
from dlplay.nn.model import build_model
from dlplay.nn.presets import small_cnn_spec
from dlplay.nn.spec import dense_spec


def direct_ms(onnx: bytes, image: np.ndarray, seconds: float) -> float:
    """Median milliseconds of one session.run on one image, in this process (one ORT thread)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])
    pixels = (image.astype(np.float32) / 255.0).reshape(1, 1, 28, 28)
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        session.run(["logits"], {"pixels": pixels})
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="each level's length")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    image = np.zeros((28, 28), dtype=np.uint8)
    image[4:24, 13:16] = 255  # a "1"
    body = serve.image_body(image)
    for name, spec in (("tutorial MLP 784-128-10", dense_spec([128])), ("small CNN preset", small_cnn_spec())):
        onnx = export_onnx(build_model(spec, seed=0), 0.1307, 0.3081)
        server = serve.LocalServer(onnx, {"title": name}).start()
        try:
            serve.load_test(server.url, body, levels=(1,), seconds=0.5)  # warm up
            print(f"\n{name}: server {server.url}, {len(body)} bytes of JSON per request")
            print(f"{'round':>5} {'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>6}"
                  f" {'direct ms':>9} {'p50/direct':>10}")
            for r in range(args.rounds):
                base = direct_ms(onnx, image, 1.0)
                for result in serve.load_test(server.url, body, seconds=args.seconds, max_requests=100_000):
                    print(f"{r + 1:>5} {result.clients:>7} {result.rps:>8.0f} {result.p50_ms:>8.2f} {result.p95_ms:>8.2f}"
                          f" {result.p99_ms:>8.2f} {result.errors:>6} {base:>9.3f} {result.p50_ms / base:>10.1f}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()

"""A small inference server for a dlplay model: ONNX Runtime behind Starlette, served by Uvicorn.

Standalone (numpy, onnxruntime, starlette, uvicorn; no dlplay, no torch): the Deploy page runs this
very file for the current model, and the Deploy zip ships it as ``server.py``.

    python server.py --model model.onnx --host 127.0.0.1 --port 8000

Requests (JSON):
    GET  /          what the model is, and how to call it
    GET  /health    {"status": "ok"}
    POST /predict   {"image": 28 rows of 28 pixel values, 0 (background) to 255 (ink)}
                    or {"images": [image, image, ...]} (at most 64)
Answer: {"class": 3, "label": "3", "probabilities": [ten numbers]} (a list of them for "images").

Every bad request gets a 4xx answer with a message and the server carries on: a body over 1 MB (413),
not JSON (400), not an object with "image" or "images", a wrong shape, a value that is not a number,
NaN or Infinity, a pixel outside 0..255 (422).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort  # type: ignore[import-untyped]  # no stubs
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

MAX_BODY = 1_000_000  # bytes: a 28×28 image as JSON is about 3 kB
MAX_IMAGES = 64
SIDE = 28


class BadInput(Exception):
    """A request the server refuses: its HTTP status and a message for the caller."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _no_constants(name: str) -> Any:
    raise BadInput(422, f"{name} is not a pixel value: send numbers from 0 to 255")


def parse_body(body: bytes) -> tuple[np.ndarray, bool]:
    """(the request's images as float32 [N, 1, 28, 28] in [0, 1], whether it sent one "image"), or
    BadInput saying what is wrong."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(400, "the body is not UTF-8 text: send JSON") from exc
    try:
        data = json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise BadInput(400, f"the body is not JSON ({exc.msg} at character {exc.pos})") from exc
    if not isinstance(data, dict) or ("image" in data) == ("images" in data):
        raise BadInput(422, "send a JSON object with \"image\" (28 rows of 28 numbers) or \"images\" (a list of them)")
    images = [data["image"]] if "image" in data else data["images"]
    if not isinstance(images, list) or not 1 <= len(images) <= MAX_IMAGES:
        raise BadInput(422, f"\"images\" must be a list of 1 to {MAX_IMAGES} images")
    return np.stack([_image(image, i) for i, image in enumerate(images)])[:, None], "image" in data


def _image(image: Any, index: int) -> np.ndarray:
    where = f"image {index}" if index else "the image"
    rows = image
    if isinstance(image, list) and len(image) == SIDE * SIDE and all(not isinstance(v, list) for v in image):
        rows = [image[r * SIDE:(r + 1) * SIDE] for r in range(SIDE)]  # 784 numbers in a row: accepted too
    if not isinstance(rows, list) or len(rows) != SIDE or not all(isinstance(r, list) and len(r) == SIDE for r in rows):
        raise BadInput(422, f"{where} must be {SIDE} rows of {SIDE} numbers (or {SIDE * SIDE} numbers), shape {_shape(image)} given")
    for row in rows:
        for value in row:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise BadInput(422, f"{where} holds {json.dumps(value)[:40]}: every pixel must be a number from 0 to 255")
            if not math.isfinite(value) or not 0 <= value <= 255:
                raise BadInput(422, f"{where} holds {value}: every pixel must be a number from 0 to 255")
    return np.asarray(rows, dtype=np.float32) / np.float32(255.0)


def _shape(value: Any) -> str:
    dims = []
    while isinstance(value, list):
        dims.append(len(value))
        value = value[0] if value else None
    return "×".join(map(str, dims)) or type(value).__name__


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


class Model:
    """The ONNX model (input ``pixels`` [B, 1, 28, 28] in [0, 1], output ``logits``) and its class names."""

    def __init__(self, path: str | Path, threads: int = 1):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        meta_file = Path(path).with_suffix(".json")
        meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else {}
        self.classes = [str(c) for c in meta.get("classes", range(10))]
        self.title = str(meta.get("title", Path(path).stem))

    def predict(self, pixels: np.ndarray) -> list[dict[str, Any]]:
        logits = self.session.run(["logits"], {"pixels": pixels})[0]
        probs = softmax(logits)
        answers = []
        for p in probs:
            k = int(p.argmax())
            answers.append({"class": k, "label": self.classes[k] if k < len(self.classes) else str(k),
                            "probabilities": [round(float(v), 6) for v in p]})
        return answers


def make_app(model: Model) -> Starlette:
    async def info(request: Request) -> JSONResponse:
        return JSONResponse({"model": model.title, "classes": model.classes,
                             "predict": "POST /predict with {\"image\": 28 rows of 28 pixel values 0..255}"})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def predict(request: Request) -> JSONResponse:
        try:
            length = request.headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
                raise BadInput(413, f"the body is larger than {MAX_BODY} bytes")
            body = bytearray()
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY:
                    raise BadInput(413, f"the body is larger than {MAX_BODY} bytes")
            pixels, single = parse_body(bytes(body))
            answers = model.predict(pixels)
        except BadInput as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        except Exception as exc:  # noqa: BLE001 - one failed request must not take the server down
            return JSONResponse({"error": f"the model could not answer: {type(exc).__name__}"}, status_code=500)
        return JSONResponse(answers[0] if single else answers)

    return Starlette(routes=[Route("/", info), Route("/health", health),
                             Route("/predict", predict, methods=["POST"])])


def _exit_with_parent(parent: int, folder: str | None) -> None:
    """The Deploy page's server stops when the app that started it is gone (and removes the model's
    temporary ``folder``, which the app can no longer do)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            if folder:
                shutil.rmtree(folder, ignore_errors=True)
            os._exit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a dlplay model (ONNX) over HTTP.")
    parser.add_argument("--model", default="model.onnx")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")), help="0: any free port")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads")
    parser.add_argument("--parent-pid", type=int, default=0, help="exit when this process is no longer the parent")
    parser.add_argument("--remove-on-orphan", default=None, help="a folder to remove when exiting for --parent-pid")
    args = parser.parse_args(argv)
    model = Model(args.model, args.threads)
    # proto IPPROTO_TCP: asyncio then turns Nagle's algorithm off on each connection (TCP_NODELAY); with
    # proto 0 an answer's body waited ~40 ms for the client's delayed acknowledgement of its headers
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(2048)  # connections wait in the backlog until Uvicorn accepts them
    if args.parent_pid:
        threading.Thread(target=_exit_with_parent, args=(args.parent_pid, args.remove_on_orphan), daemon=True).start()
    config = uvicorn.Config(make_app(model), log_level="warning", access_log=False, lifespan="off",
                            limit_concurrency=256, timeout_keep_alive=30)
    print(f"LISTENING {args.host} {sock.getsockname()[1]}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()

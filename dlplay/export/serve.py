"""The model as a service: a local inference server (a subprocess running server_app.py on 127.0.0.1),
a client for it, a bounded load test, and the zip that runs the same server anywhere Docker runs.

A :class:`LocalServer` writes the model's ONNX file to a temporary folder and starts
``server_app.py`` (ONNX Runtime behind Starlette, served by Uvicorn) on a free port of 127.0.0.1. It
stops when asked (:meth:`LocalServer.stop`), when its owner is gone (``owner_alive``, checked by a
watchdog thread every ``check_every`` seconds: the Deploy page ties it to the browser session's
heartbeat), when the app's process exits (atexit) or dies (the server watches its parent). At most
``DLPLAY_MAX_SERVERS`` (default 4) run in one app process; the page keeps one per browser session.
"""
from __future__ import annotations

import atexit
import http.client
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlplay.errors import UserError

SERVER_APP = Path(__file__).with_name("server_app.py")
HOST = "127.0.0.1"
ENV_MAX_SERVERS = "DLPLAY_MAX_SERVERS"
DEFAULT_MAX_SERVERS = 4
LOOPBACK = ("127.0.0.1", "localhost", "::1")
LOAD_LEVELS = (1, 4, 16)  # concurrent clients of the load test
# what the zip's requirements.txt pins (the versions this app runs the server with)
SERVER_REQUIREMENTS = ("numpy==2.4.6", "onnxruntime==1.32.0", "starlette==1.10.0", "uvicorn==0.55.0")

_live: weakref.WeakSet[LocalServer] = weakref.WeakSet()
_live_lock = threading.Lock()


def max_servers() -> int:
    try:
        return max(1, int(os.environ.get(ENV_MAX_SERVERS, "") or DEFAULT_MAX_SERVERS))
    except ValueError:
        return DEFAULT_MAX_SERVERS


def running_servers() -> list[LocalServer]:
    with _live_lock:
        return [s for s in _live if s.running]


@atexit.register
def _stop_all() -> None:
    for server in running_servers():
        server.stop()


class LocalServer:
    """One inference server on 127.0.0.1 for one model (``onnx``: the bytes of dlplay's ONNX export;
    ``meta``: {"title", "classes"} for its answers)."""

    def __init__(self, onnx: bytes, meta: dict[str, Any], *, owner_alive: Callable[[], bool] | None = None,
                 check_every: float = 1.0, threads: int = 1, start_timeout: float = 90.0):
        self._onnx, self._meta = onnx, meta
        self._owner_alive = owner_alive
        self._check_every = check_every
        self._threads = threads
        self._start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._folder: Path | None = None
        self._lock = threading.Lock()
        self.port: int | None = None
        self.stopped_because: str = ""  # "request", "owner", "exited" once it has stopped

    # ----- life -------------------------------------------------------------------------------
    def start(self) -> LocalServer:
        """Start the server and wait until it listens (UserError when it cannot)."""
        with _live_lock:
            if sum(1 for s in _live if s.running) >= max_servers():
                raise UserError("deploy.too_many", limit=max_servers())
            _live.add(self)
        folder = Path(tempfile.mkdtemp(prefix="dlplay-serve-"))
        self._folder = folder
        (folder / "model.onnx").write_bytes(self._onnx)
        (folder / "model.json").write_text(json.dumps(self._meta), encoding="utf-8")
        out = open(folder / "server.out", "wb")  # noqa: SIM115 - the child writes it; closed below
        env = dict(os.environ, OMP_NUM_THREADS=str(self._threads))
        self._proc = subprocess.Popen(
            [sys.executable, str(SERVER_APP), "--model", str(folder / "model.onnx"), "--host", HOST, "--port", "0",
             "--threads", str(self._threads), "--parent-pid", str(os.getpid()), "--remove-on-orphan", str(folder)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=folder, env=env)
        out.close()
        deadline = time.monotonic() + self._start_timeout
        while self.port is None:
            text = (folder / "server.out").read_text(encoding="utf-8", errors="replace")
            for line in text.splitlines():
                if line.startswith("LISTENING "):
                    self.port = int(line.split()[-1])
            if self.port is None:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self.stop("exited")
                    raise UserError("deploy.start_failed", reason=text.strip()[-400:] or "timeout")
                time.sleep(0.05)
        threading.Thread(target=self._watch, name="dlplay-serve-watch", daemon=True).start()
        return self

    def _watch(self) -> None:
        """Stop the server when its owner is gone; notice when it exited by itself."""
        while self.running:
            time.sleep(self._check_every)
            try:
                alive = self._owner_alive is None or self._owner_alive()
            except Exception:  # noqa: BLE001 - an owner check that fails counts as gone
                alive = False
            if not alive:
                self.stop("owner")
                return
        if self._proc is not None and not self.stopped_because:
            self.stop("exited")

    def stop(self, because: str = "request") -> None:
        """Stop the server (terminate, then kill after 5 s) and remove its folder; idempotent."""
        with self._lock:
            proc, self._proc = self._proc, None
            if not self.stopped_because:
                self.stopped_because = because
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    @property
    def running(self) -> bool:
        proc = self._proc
        return proc is not None and proc.poll() is None and self.port is not None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def __del__(self) -> None:  # a forgotten server does not outlive its object
        try:  # noqa: SIM105 - no contextlib here: module globals may be gone in a __del__ at exit
            self.stop("owner")
        except Exception:  # noqa: BLE001
            pass


# ----- a client ----------------------------------------------------------------------------------

def image_body(image: np.ndarray) -> bytes:
    """The JSON body for one 28×28 uint8 image (0 background, 255 ink)."""
    pixels = np.asarray(image, dtype=np.uint8).reshape(28, 28)
    return json.dumps({"image": pixels.tolist()}, separators=(",", ":")).encode()


def request(url: str, body: bytes | None = None, path: str = "/predict", timeout: float = 10.0,
            headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """(HTTP status, the JSON answer) of one request to a server on this machine (POST with a body, else GET)."""
    host, port = _loopback(url)
    conn = _connect(host, port, timeout)
    try:
        conn.request("POST" if body is not None else "GET", path, body=body,
                     headers={"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        data = response.read()
        try:
            return response.status, json.loads(data)
        except json.JSONDecodeError:
            return response.status, data.decode("utf-8", "replace")
    finally:
        conn.close()


def predict(url: str, image: np.ndarray, timeout: float = 10.0) -> dict[str, Any]:
    """The server's answer for one image (UserError when it does not answer 200)."""
    try:
        status, answer = request(url, image_body(image), timeout=timeout)
    except OSError as exc:
        raise UserError("deploy.no_answer", reason=str(exc)) from exc
    if status != 200 or not isinstance(answer, dict):
        raise UserError("deploy.no_answer", reason=f"{status}: {answer}")
    return answer


def _connect(host: str, port: int, timeout: float) -> http.client.HTTPConnection:
    """A keep-alive connection without Nagle's delay (a small request and its answer go out at once)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def _loopback(url: str) -> tuple[str, int]:
    rest = url.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = rest.rpartition(":")
    host = host.strip("[]")
    if host not in LOOPBACK:
        raise ValueError(f"only servers on this machine (127.0.0.1) are called: {url}")
    return host, int(port)


# ----- the load test -----------------------------------------------------------------------------

@dataclass(frozen=True)
class LoadResult:
    """One level of the load test: ``clients`` concurrent clients sending requests back to back."""

    clients: int
    requests: int
    errors: int
    seconds: float
    rps: float  # answered requests per second
    p50_ms: float
    p95_ms: float
    p99_ms: float


class _Level:
    """One level's shared state: its deadline, the requests it may still send, what came back."""

    def __init__(self, deadline: float, budget: int):
        self.deadline, self.budget = deadline, budget
        self.latencies: list[float] = []
        self.errors = 0
        self.lock = threading.Lock()

    def take(self) -> bool:
        """May one more request go out?"""
        with self.lock:
            if self.budget <= 0 or time.perf_counter() >= self.deadline:
                return False
            self.budget -= 1
            return True


def _client(host: str, port: int, body: bytes, level: _Level) -> None:
    """One client: one keep-alive connection, the next request as soon as the answer is in."""
    try:
        conn = _connect(host, port, 10)
    except OSError:
        with level.lock:
            level.errors += 1
        return
    mine: list[float] = []
    bad = 0
    try:
        while level.take():
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                ok = False
                conn.close()
                conn = _connect(host, port, 10)
            if ok:
                mine.append(time.perf_counter() - t0)
            else:
                bad += 1
    finally:
        conn.close()
        with level.lock:
            level.latencies.extend(mine)
            level.errors += bad


def load_test(url: str, body: bytes, levels: Sequence[int] = LOAD_LEVELS, seconds: float = 2.0,
              max_requests: int = 4000, progress: Callable[[int, LoadResult], None] | None = None) -> list[LoadResult]:
    """Requests per second and latency percentiles at each level of concurrent clients (loopback
    only; each level at most ``seconds`` long and ``max_requests`` requests, so the test is bounded).
    Each client keeps one connection open and sends the next request when the answer is in."""
    host, port = _loopback(url)
    results = []
    for i, clients in enumerate(levels):
        level = _Level(time.perf_counter() + seconds, max_requests)
        start = time.perf_counter()
        threads = [threading.Thread(target=_client, args=(host, port, body, level), name=f"dlplay-load-{k}",
                                    daemon=True) for k in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(seconds + 15)
        elapsed = time.perf_counter() - start
        latencies = level.latencies
        ms = np.asarray(latencies) * 1000.0 if latencies else np.asarray([np.nan])
        result = LoadResult(clients, len(latencies), level.errors, elapsed, len(latencies) / max(elapsed, 1e-9),
                            *(float(np.percentile(ms, q)) for q in (50, 95, 99)))
        results.append(result)
        if progress is not None:
            progress(i, result)
    return results


# ----- the zip -----------------------------------------------------------------------------------

DOCKERFILE = """FROM python:3.12-slim
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY server.py model.onnx model.json ./
EXPOSE 8000
# 0.0.0.0 inside the container; publish the port with docker run -p 8000:8000
CMD ["python", "server.py", "--model", "model.onnx", "--host", "0.0.0.0", "--port", "8000"]
"""


def readme(title: str, example: str) -> str:
    return f"""# {title}: a dlplay model as a web service

The model (`model.onnx`, class names in `model.json`) answers over HTTP: ONNX Runtime behind Starlette,
served by Uvicorn (`server.py`).

## With Docker

    docker build -t dlplay-model .
    docker run --rm -p 8000:8000 dlplay-model

## Without Docker (Python 3.10 or newer)

    pip install -r requirements.txt
    python server.py --model model.onnx --port 8000

## Ask it

    {example}

The answer: `{{"class": 7, "label": "7", "probabilities": [ten numbers]}}`. Send `"image"`: 28 rows of 28
pixel values, 0 (background) to 255 (ink), a white digit on black like MNIST; or `"images"`: a list of
up to 64 of them. A bad request (not JSON, a wrong shape, a value that is not a number, NaN, a body
over 1 MB) gets a 4xx answer with a message. `GET /health` answers `{{"status": "ok"}}`.
"""


def curl_example(url: str) -> str:
    """A curl command that sends an all-black 28×28 image (the JSON body made by a line of Python)."""
    return (f"curl -s -X POST {url}/predict -H 'Content-Type: application/json' \\\n"
            "  -d \"{\\\"image\\\": $(python3 -c 'print([[0] * 28] * 28)')}\"")


def bundle_zip(onnx: bytes, meta: dict[str, Any]) -> bytes:
    """model.onnx, model.json, server.py, requirements.txt, Dockerfile and README.md in one zip."""
    buf = io.BytesIO()
    title = str(meta.get("title", "dlplay model"))
    example = curl_example("http://localhost:8000").replace("\n", "\n    ")
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model.onnx", onnx)
        zf.writestr("model.json", json.dumps(meta, indent=2, ensure_ascii=False))
        zf.writestr("server.py", SERVER_APP.read_text(encoding="utf-8"))
        zf.writestr("requirements.txt", "\n".join(SERVER_REQUIREMENTS) + "\n")
        zf.writestr("Dockerfile", DOCKERFILE)
        zf.writestr("README.md", readme(title, example))
    return buf.getvalue()

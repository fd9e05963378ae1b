"""A Ray head started and owned by this app process (``DLPLAY_RAY_ADDRESS=local``); no Ray import here.

Why not ``ray.init(address="local")`` in the app: Ray gives its GCS and raylet a parent-death signal,
and Linux ties that signal to the *thread* that started them (``prctl(2)``). A Streamlit script run
is a short-lived thread, so the head died with the script run that started it, and the app process
exited a minute later ("Failed to connect to GCS within 60 seconds"). Here the head is ``ray start
--head --block`` under a small guardian process (:mod:`.guard`), started from a thread that lives as
long as the app's link to Ray (:class:`~.link.ClusterLink`): the head lives as long as the app, ends
with it (even when the app is killed), and the app connects to it by its address like to any cluster.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

ENV_TEMP_DIR = "DLPLAY_RAY_TEMP_DIR"  # where the local head keeps its logs, sockets and pid file
PID_FILE = "dlplay_head.json"  # {"guardian": pid, "head": pid (ray start), "app": pid}
LOG_FILE = "dlplay_head.log"  # ray start's output
START_TIMEOUT_S = 180.0  # ray start on a busy 2-core machine takes 15-30 s
GUARD = Path(__file__).with_name("guard.py")


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 1.5) -> bool:
    """Whether something accepts TCP connections at host:port (the GCS of a live head does)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def ray_command() -> list[str]:
    """The ``ray`` command of this Python environment."""
    beside = Path(sys.executable).with_name("ray")
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "ray.scripts.scripts"]


class LocalHead:
    """``ray start --head --block`` on 127.0.0.1 and a free port, under a guardian; call :meth:`start`
    from a thread that lives as long as the head should."""

    def __init__(self, temp_dir: str | None = None, num_cpus: int | None = None):
        self.temp_dir = temp_dir or (os.environ.get(ENV_TEMP_DIR) or "").strip() or tempfile.mkdtemp(prefix="dlplay-ray-")
        self.num_cpus = num_cpus
        self.port = 0
        self.guardian: subprocess.Popen | None = None
        self.head_pid: int | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return Path(self.temp_dir) / PID_FILE

    def log_tail(self, chars: int = 1500) -> str:
        try:
            return (Path(self.temp_dir) / LOG_FILE).read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def start(self, env: Mapping[str, str], timeout: float = START_TIMEOUT_S) -> str:
        """Start the head with this environment; its address once its GCS answers (RuntimeError if not)."""
        os.makedirs(self.temp_dir, exist_ok=True)
        self.pid_file.unlink(missing_ok=True)
        self.port = free_port()
        command = [*ray_command(), "start", "--head", "--block", f"--port={self.port}", "--node-ip-address=127.0.0.1",
                   f"--temp-dir={self.temp_dir}", "--include-dashboard=false", "--disable-usage-stats"]
        if self.num_cpus is not None:
            command.append(f"--num-cpus={self.num_cpus}")
        with open(Path(self.temp_dir) / LOG_FILE, "wb") as log:
            self.guardian = subprocess.Popen(
                [sys.executable, str(GUARD), str(os.getpid()), str(self.pid_file), "--", *command],
                env=dict(env), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not (self._head_known() and (Path(self.temp_dir) / "ray_current_cluster").exists()
                   and port_open("127.0.0.1", self.port)):
            if self.guardian.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ray start --head did not start (exit {self.guardian.returncode}): "
                                   f"{self.log_tail()}")
            time.sleep(0.2)
        return self.address

    def _head_known(self) -> bool:
        if self.head_pid is None:
            try:
                self.head_pid = int(json.loads(self.pid_file.read_text())["head"])
            except (OSError, ValueError, KeyError):
                return False
        return True

    def alive(self) -> bool:
        """The guardian still runs (it ends as soon as the head's ``ray start`` does)."""
        return self.guardian is not None and self.guardian.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """End the head and everything it started (the guardian kills its process group)."""
        guardian = self.guardian
        if guardian is None or guardian.poll() is not None:
            return
        guardian.send_signal(signal.SIGTERM)
        try:
            guardian.wait(timeout)
        except subprocess.TimeoutExpired:
            guardian.kill()
            guardian.wait()
            if self.head_pid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.head_pid, signal.SIGKILL)

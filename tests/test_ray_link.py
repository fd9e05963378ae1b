"""The Ray link without Ray: the token rule (as ``ray start --head`` decides it), the guardian that ends a
local head with the app that started it, and the watch that turns a silent head into a fallback."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import psutil

from dlplay.cluster import head as head_mod
from dlplay.cluster import link as link_mod
from dlplay.cluster.head import GUARD, free_port
from dlplay.cluster.link import FAILED, LOST, UP, ClusterLink, prepare_auth, token_available
from helpers import wait_for


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_the_app_uses_a_token_it_finds_as_ray_start_head_does(tmp_path):
    home = tmp_path / "home"
    assert prepare_auth({}, home=home) == "disabled"  # no token anywhere: Ray's default for a joining driver
    env: dict[str, str] = {"RAY_AUTH_MODE": "", "RAY_AUTH_TOKEN": ""}
    assert prepare_auth(env, home=home) == "disabled"
    assert env == {}  # empty variables count as unset
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text("abc")  # what ray.init() / ray get-auth-token --generate write
    env = {}
    assert prepare_auth(env, home=home) == "token"
    assert env == {"RAY_AUTH_MODE": "token"}
    assert prepare_auth({"RAY_AUTH_MODE": "disabled"}, home=home) == "disabled"  # an explicit mode is kept
    path = tmp_path / "token"
    assert not token_available({"RAY_AUTH_TOKEN_PATH": str(path)}, home=tmp_path)
    path.write_text("xyz")
    assert token_available({"RAY_AUTH_TOKEN_PATH": str(path)}, home=tmp_path)
    assert token_available({"RAY_AUTH_TOKEN": "xyz"}, home=tmp_path)


def test_a_head_the_app_starts_gets_a_token_of_its_own(tmp_path):
    env: dict[str, str] = {}
    assert prepare_auth(env, new_head=True, home=tmp_path) == "token"
    assert env["RAY_AUTH_MODE"] == "token"
    assert len(env["RAY_AUTH_TOKEN"]) == 64
    assert not (tmp_path / ".ray").exists()  # nothing written
    env = {"RAY_AUTH_MODE": "disabled"}
    assert prepare_auth(env, new_head=True, home=tmp_path) == "disabled"
    assert "RAY_AUTH_TOKEN" not in env


def test_the_guardian_ends_its_command_group_when_the_app_is_killed(tmp_path):
    """A stand-in app starts the guardian (from a thread that stays) over a process group of two
    sleeps; SIGKILL to the app: the guardian is signalled by the kernel and kills the group."""
    pid_file = tmp_path / "pids.json"
    app = subprocess.Popen([sys.executable, "-c", f"""
import os, subprocess, sys, threading, time
def start():
    subprocess.Popen([sys.executable, {str(GUARD)!r}, str(os.getpid()), {str(pid_file)!r}, "--",
                      "/bin/sh", "-c", "sleep 300 & exec sleep 300"])
    threading.Event().wait()
threading.Thread(target=start, daemon=True).start()
time.sleep(300)
"""])
    try:
        assert wait_for(pid_file.exists, 30, 0.05)
        pids = json.loads(pid_file.read_text())
        assert pids["app"] == app.pid
        group = [p.pid for p in psutil.process_iter() if p.pid != pids["guardian"] and _pgid(p.pid) == pids["head"]]
        assert len(group) == 2
        assert all(not gone(pid) for pid in group)
    finally:
        app.kill()
        app.wait()
    assert wait_for(lambda: gone(pids["guardian"]) and all(gone(pid) for pid in group), 30, 0.05)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def test_the_guardian_stops_the_group_when_told(tmp_path):
    pid_file = tmp_path / "pids.json"
    guardian = subprocess.Popen([sys.executable, str(GUARD), str(os.getpid()), str(pid_file), "--",
                                 "/bin/sh", "-c", "sleep 300 & exec sleep 300"])
    try:
        assert wait_for(pid_file.exists, 30, 0.05)
        head = json.loads(pid_file.read_text())["head"]
        assert not gone(head)
        guardian.send_signal(signal.SIGTERM)
        assert guardian.wait(30) == 0
        assert wait_for(lambda: not [p for p in psutil.process_iter() if _pgid(p.pid) == head and not gone(p.pid)], 30)
    finally:
        if guardian.poll() is None:
            guardian.kill()


def test_a_head_that_stops_answering_means_runs_fall_back(monkeypatch):
    """The link's watch: a GCS port that closes makes the link lost, and its backend None (in-process)."""
    import socket

    monkeypatch.setattr(link_mod, "PROBE_EVERY_S", 0.05)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    link = ClusterLink("127.0.0.1:1")
    link.gcs_address = f"127.0.0.1:{server.getsockname()[1]}"
    link._backend = object()  # type: ignore[assignment]  # stands for the RayBackend
    link.state = UP
    link._ready.set()
    watch = threading.Thread(target=link._watch, daemon=True)
    watch.start()
    try:
        assert not wait_for(lambda: link.state != UP, 0.5)  # a head that answers stays up
        assert link.backend() is not None
        assert link.alive()
        server.close()
        assert wait_for(lambda: link.state == LOST, 10)
        assert link.backend() is None
        assert not link.alive()
        assert "does not answer" in (link.error or "")
    finally:
        link.close()
        server.close()
    watch.join(5)


def test_a_local_head_that_does_not_start_is_a_failed_link(monkeypatch, tmp_path):
    """``ray start`` that exits at once (here: a command that fails): the link fails, runs stay here."""
    monkeypatch.setattr(head_mod, "ray_command", lambda: [sys.executable, "-c", "import sys; sys.exit(3)"])
    monkeypatch.setenv("DLPLAY_RAY_TEMP_DIR", str(tmp_path))
    for name in (*link_mod.AUTH_VARS, link_mod.ENV_RECONNECT):  # the link sets them for the process: restored after
        monkeypatch.delenv(name, raising=False)
    link = ClusterLink("local")
    link.start()
    assert link.backend(wait=60) is None
    assert link.state == FAILED
    assert "did not start" in (link.error or "")
    assert free_port() > 0
    assert Path(tmp_path / head_mod.LOG_FILE).exists()

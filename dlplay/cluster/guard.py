"""The guardian of a Ray head that an app process started (``DLPLAY_RAY_ADDRESS=local``); stdlib only.

Run as a script by :mod:`.head`: ``python guard.py <app pid> <pid file> -- ray start --head --block ...``.
It asks the kernel for SIGTERM when its parent thread ends (``prctl(PR_SET_PDEATHSIG)``: the app's
process-lifetime thread that started it, so in practice when the app process ends, even by SIGKILL),
starts ``ray start`` in a new session, writes ``{"guardian": pid, "head": pid}`` to the pid file, and
waits. When the app ends, or it is told to stop (SIGTERM), or ``ray start`` ends by itself (one of Ray's
processes died), it kills the head's whole process group (GCS, raylet, Ray's agents and monitors;
the worker processes end with their raylet), so no Ray process outlives the app that started it.
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def main(argv: list[str]) -> int:
    if len(argv) < 5 or argv[3] != "--":
        print("usage: guard.py <parent pid> <pid file> -- <command...>", file=sys.stderr)
        return 2
    parent, pid_file, command = int(argv[1]), argv[2], argv[4:]
    child: subprocess.Popen | None = None

    def end(signum: int, frame: object) -> None:
        if child is not None:
            _kill_group(child.pid)
        os._exit(0)

    signal.signal(signal.SIGTERM, end)
    signal.signal(signal.SIGINT, end)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
    if os.getppid() != parent:  # the app ended before the line above
        return 1
    # stdin: a pipe nobody writes to, open as long as this process lives (Ray reads it to notice a dead parent)
    child = subprocess.Popen(command, start_new_session=True, stdin=subprocess.PIPE)
    tmp = f"{pid_file}.tmp"
    with open(tmp, "w") as f:
        json.dump({"guardian": os.getpid(), "head": child.pid, "app": parent}, f)
    os.replace(tmp, pid_file)
    code = child.wait()
    _kill_group(child.pid)  # what ray start left behind (it exits when one of its processes died)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))

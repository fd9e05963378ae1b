"""This app process's link to Ray: connect once, watch the head, fall back to in-process runs when it is gone.

One :class:`ClusterLink` per process and address. Its thread (``dlplay-ray-link``, as long-lived as
the link) connects: for ``local`` it first starts a Ray head owned by the app (:mod:`.head`), for an
address it joins that cluster. Then it checks the head every ``PROBE_EVERY_S`` seconds (the local
head's guardian process, the GCS port). States:

- ``connecting``: pages that make a run wait for the outcome;
- ``up``: runs train in Ray worker actors (:class:`~.backend.RayBackend`);
- ``failed``: the connection did not succeed (error kept); ``lost``: the head stopped answering.
  In both, runs train in the app's process again and the pages say so (``dlplay/ui/cluster.py``);
  Ray's runs of this app fail with ``cluster.head_lost``. A restart of the app connects again.

The app process survives a lost head because Ray's driver, by default, ends its own process when the
GCS has been unreachable for 60 s: :func:`driver_environment` raises that limit for this process only
(Ray's own processes keep theirs and end with their head).

Ray 2.60's token authentication: ``ray start --head`` turns it on when a token exists (``RAY_AUTH_TOKEN``,
``RAY_AUTH_TOKEN_PATH``, or ``~/.ray/auth_token``, which ``ray.init()`` and ``ray get-auth-token
--generate`` write), but a driver connecting by address does not. :func:`prepare_auth` does what
``ray start`` does: with ``RAY_AUTH_MODE`` unset and a token found, the app uses it.
"""
from __future__ import annotations

import atexit
import logging
import os
import secrets
import threading
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from dlplay.cluster.head import LocalHead, port_open

if TYPE_CHECKING:
    from dlplay.cluster.backend import RayBackend
    from dlplay.cluster.settings import ClusterSettings

log = logging.getLogger(__name__)

CONNECTING, UP, FAILED, LOST = "connecting", "up", "failed", "lost"
PROBE_EVERY_S = 2.0
PROBE_FAILURES = 2  # consecutive failed probes of a head that is not ours before it counts as lost
CONNECT_WAIT_S = 300.0  # a page waits at most this long for the first connection
ENV_RECONNECT = "RAY_gcs_rpc_server_reconnect_timeout_s"  # Ray's driver ends its process after this
DRIVER_RECONNECT_S = str(10 * 365 * 24 * 3600)
AUTH_VARS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


def token_available(env: MutableMapping[str, str], home: Path | None = None) -> bool:
    """Whether Ray would find an authentication token: ``RAY_AUTH_TOKEN``, the file ``RAY_AUTH_TOKEN_PATH``
    names, or ``~/.ray/auth_token`` (Ray's order)."""
    if (env.get("RAY_AUTH_TOKEN") or "").strip():
        return True
    path = (env.get("RAY_AUTH_TOKEN_PATH") or "").strip()
    if path:
        return Path(path).expanduser().is_file()
    return ((home or Path.home()) / ".ray" / "auth_token").is_file()


def prepare_auth(env: MutableMapping[str, str], *, new_head: bool = False, home: Path | None = None) -> str:
    """Set ``RAY_AUTH_MODE`` in ``env`` as ``ray start --head`` decides it; returns the mode.

    An explicit ``RAY_AUTH_MODE`` is kept. Unset (or empty): ``token`` when a token is found. For a head
    this process starts (``new_head``) token authentication is on, as for Ray's own local clusters: a
    random token is made for this process and its head when none is found (nothing is written to disk).
    """
    for name in AUTH_VARS:
        if name in env and not (env.get(name) or "").strip():
            del env[name]  # an empty variable means unset (Ray would take "" as a mode or a token)
    mode = (env.get("RAY_AUTH_MODE") or "").strip().lower()
    if mode:
        return mode
    if not token_available(env, home):
        if not new_head:
            return "disabled"
        env["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    env["RAY_AUTH_MODE"] = "token"
    return "token"


def driver_environment(env: MutableMapping[str, str]) -> None:
    """This process, as a Ray driver, waits for a lost GCS instead of exiting after 60 s (unless the
    variable is set already)."""
    env.setdefault(ENV_RECONNECT, DRIVER_RECONNECT_S)


class ClusterLink:
    """This process's connection to the Ray cluster at ``address`` (``local``: a head it starts)."""

    _links: ClassVar[dict[str, ClusterLink]] = {}
    _class_lock = threading.Lock()

    def __init__(self, address: str, settings: ClusterSettings | None = None):
        self.address = address
        self.settings = settings
        self.state = CONNECTING
        self.error: str | None = None
        self.since = time.time()
        self.gcs_address: str | None = None
        self.head: LocalHead | None = None
        self._backend: RayBackend | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_address(cls, address: str) -> ClusterLink:
        """The process's link for ``address``, connecting (in its own thread) from the first call on."""
        with cls._class_lock:
            link = cls._links.get(address)
            if link is None:
                link = cls._links[address] = cls(address)
                link.start()
            return link

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dlplay-ray-link", daemon=True)
        self._thread.start()

    # ----- what the app asks --------------------------------------------------------------------
    def backend(self, wait: float = CONNECT_WAIT_S) -> RayBackend | None:
        """The Ray backend while the link is up; None (runs stay in this process) once it failed or was
        lost. Waits for the first connection (at most ``wait`` seconds)."""
        self._ready.wait(wait)
        return self._backend if self.state == UP else None

    def alive(self) -> bool:
        return self.state == UP

    # ----- the link's thread -------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._connect()
        except BaseException as exc:  # noqa: BLE001 - any failure: runs stay in this process
            self._end(FAILED, exc)
            return
        self._watch()

    def _connect(self) -> None:
        from dlplay.cluster.backend import RayBackend, connect_ray
        from dlplay.cluster.settings import ClusterSettings

        address = self.address
        if address == "local":
            self.head = LocalHead()
            env = dict(os.environ)
            prepare_auth(env, new_head=True)
            for name in AUTH_VARS:  # the app uses the head's token and mode
                if name in env:
                    os.environ[name] = env[name]
            address = self.head.start(env)  # from this thread: the guardian lives while it does
            atexit.register(self.head.stop)
        else:
            prepare_auth(os.environ)
        driver_environment(os.environ)
        connect_ray(address)
        self.gcs_address = _gcs_address() or address
        self._backend = RayBackend.connect(self.address, self.settings or ClusterSettings.from_env(), alive=self.alive)
        self.state, self.since = UP, time.time()
        self._ready.set()
        log.info("dlplay: runs train on Ray at %s", self.gcs_address)

    def _watch(self) -> None:
        failures = 0
        while not self._stop.wait(PROBE_EVERY_S):
            if self.head is not None and not self.head.alive():
                self._end(LOST, RuntimeError("the Ray head this app started has ended"))
                return
            failures = 0 if self._probe() else failures + 1
            if failures >= PROBE_FAILURES:
                self._end(LOST, RuntimeError(f"the Ray head at {self.gcs_address} does not answer"))
                return

    def _probe(self) -> bool:
        host, _, port = (self.gcs_address or "").rpartition(":")
        return bool(host) and port.isdigit() and port_open(host.strip("[]"), int(port))

    def _end(self, state: str, exc: BaseException) -> None:
        self.error = f"{type(exc).__name__}: {exc}".strip()
        self.state, self.since = state, time.time()
        self._ready.set()
        log.error("dlplay: %s Ray at %s (%s); runs train in this process from now on",
                  "could not connect to" if state == FAILED else "lost", self.address, self.error)
        if self.head is not None:
            self.head.stop()

    def close(self) -> None:
        """Stop watching and end the local head (tests)."""
        self._stop.set()
        if self.head is not None:
            self.head.stop()


def _gcs_address() -> str | None:
    try:
        import ray

        return str(ray.get_runtime_context().gcs_address)
    except Exception:  # noqa: BLE001
        return None

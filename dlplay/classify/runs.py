"""Run history: what each training run was (spec, config, device) and what it reached, kept and compared.

A :class:`RunRecord` is made when a run ends (:class:`RunRecorder` is a TrainingSession callback)
and kept in the browser session's :class:`RunHistory`. Learners can save runs to disk with
:class:`RunStore`: **one JSON file per run in a runs folder** (``$DLPLAY_RUNS_DIR``, else
``$DLPLAY_CACHE_DIR/runs``, ``$XDG_CACHE_HOME/dlplay/runs``, ``~/.cache/dlplay/runs``). Why files
and not SQLite or one JSON-lines file: each save is an atomic rename of a complete file, so
several browser sessions or server processes saving at once never interleave or lock each other;
a damaged file costs one run, not the history; deleting a run is deleting a file; and the files
are readable and diffable with any editor (a run is a few kB, and a history is tens of runs, so
no query engine is needed). ``DLPLAY_RUNS_DIR=off`` switches saving to disk off.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import MISSING, dataclass, fields, replace
from pathlib import Path
from typing import Any

from dlplay.classify.callbacks import TrainingCallback
from dlplay.nn.layers import LAYER_KINDS
from dlplay.nn.spec import ModelSpec, TrainConfig
from dlplay.run.metrics import EpochRecord, downsample
from dlplay.run.status import PROBLEM, Status

RUN_FORMAT = "dlplay-run"
RUN_VERSION = 1
MAX_LOSS_POINTS = 400  # the step-loss curve kept with a run (downsampled)
MAX_HISTORY = 100  # runs kept per browser session (oldest dropped first)
MAX_RUN_FILE_BYTES = 2_000_000
_RUN_ID = re.compile(r"^[0-9a-f]{12}$")


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class RunRecord:
    """One finished (or stopped) run: what was trained, where, and how it went."""

    run_id: str
    created_at: float  # unix time the run started
    spec: ModelSpec
    config: TrainConfig
    device: str  # torch device type: cpu, cuda, mps
    device_name: str  # e.g. "CPU (2 cores)" or the GPU's name
    status: str  # done, stopped, diverged, failed
    duration_s: float
    steps: int  # optimisation steps taken
    params: int
    epochs: tuple[EpochRecord, ...] = ()
    test_acc: float | None = None  # of the final weights
    test_loss: float | None = None
    loss_steps: tuple[int, ...] = ()
    loss_values: tuple[float, ...] = ()
    lr_changes: tuple[tuple[int, float], ...] = ()
    source: str = "trained"  # trained | checkpoint
    label: str = ""
    engine: str = ""  # what trained it: "dense" (dlplay.nn.engine) or "autograd"; "" for older records
    fork: tuple[str, int, str, str, str] | None = None  # a fork (dlplay/classify/fork.py): parent run, step, change, old, new

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def dataset(self) -> str:
        return self.config.dataset

    @property
    def train_acc(self) -> float | None:
        return self.epochs[-1].train_acc if self.epochs else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": RUN_FORMAT,
            "version": RUN_VERSION,
            "run_id": self.run_id,
            "created_at": self.created_at,
            "spec": self.spec.to_dict(),
            "config": self.config.to_dict(),
            "device": self.device,
            "device_name": self.device_name,
            "status": self.status,
            "duration_s": self.duration_s,
            "steps": self.steps,
            "params": self.params,
            "epochs": [[getattr(e, f.name) for f in fields(EpochRecord)] for e in self.epochs],
            "test_acc": self.test_acc,
            "test_loss": self.test_loss,
            "loss_steps": list(self.loss_steps),
            "loss_values": list(self.loss_values),
            "lr_changes": [list(c) for c in self.lr_changes],
            "source": self.source,
            "label": self.label,
            "engine": self.engine,
            "fork": list(self.fork) if self.fork else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """Rebuild a record; raises ValueError (or the spec's UserError) on anything malformed."""
        if not isinstance(data, dict) or data.get("format") != RUN_FORMAT:
            raise ValueError("not a dlplay run")
        if not isinstance(data.get("version"), int) or data["version"] > RUN_VERSION:
            raise ValueError("unsupported run version")
        run_id = data.get("run_id")
        if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
            raise ValueError("bad run id")
        epoch_fields = [f.name for f in fields(EpochRecord)]
        epochs = []
        oldest = len([f for f in fields(EpochRecord) if f.default is MISSING])  # rows from before validation
        for row in data.get("epochs", []):
            if not isinstance(row, list) or not oldest <= len(row) <= len(epoch_fields):
                raise ValueError("bad epoch row")
            epochs.append(EpochRecord(**dict(zip(epoch_fields, row))))
        steps = [int(s) for s in data.get("loss_steps", [])]
        values = [_float(v) for v in data.get("loss_values", [])]
        if len(steps) != len(values):
            raise ValueError("loss steps and values differ in length")
        return cls(
            run_id=run_id,
            created_at=float(data["created_at"]),
            spec=ModelSpec.from_dict(data["spec"]),
            config=TrainConfig.from_dict(data["config"]),
            device=str(data.get("device", "cpu")),
            device_name=str(data.get("device_name", "")),
            status=str(data.get("status", Status.DONE)),
            duration_s=float(data.get("duration_s", 0.0)),
            steps=int(data.get("steps", 0)),
            params=int(data.get("params", 0)),
            epochs=tuple(epochs),
            test_acc=_optional_float(data.get("test_acc")),
            test_loss=_optional_float(data.get("test_loss")),
            loss_steps=tuple(steps),
            loss_values=tuple(values),
            lr_changes=tuple((int(s), float(lr)) for s, lr in data.get("lr_changes", [])),
            source=str(data.get("source", "trained")),
            label=str(data.get("label", ""))[:200],
            engine=str(data.get("engine", ""))[:20],
            fork=_fork_origin(data.get("fork")),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        return cls.from_dict(json.loads(text))


def _fork_origin(value: Any) -> tuple[str, int, str, str, str] | None:
    """A stored fork origin [parent run id, step, change, old, new] (None: not a fork)."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 5 or isinstance(value[1], bool) or not isinstance(value[1], int):
        raise ValueError("bad fork origin")
    parent, step, change, old, new = value
    return (str(parent)[:40], int(step), str(change)[:20], str(old)[:40], str(new)[:40])


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("not a number")
    return float(value)


def _optional_float(value: Any) -> float | None:
    return None if value is None else _float(value)


def record_from_session(session: Any, *, evaluate_final: bool = True, run_id: str | None = None) -> RunRecord | None:
    """A record of a run (a RunHandle) as it stands (None if it never took a step), under its ``run_id``.

    The final test metrics are the last epoch's when the run ended on an epoch boundary; a run
    stopped mid-epoch is evaluated once more (unless ``evaluate_final`` is False).
    """
    import torch

    from dlplay.nn.model import layer_summary
    from dlplay.run.device import describe_device

    snap = session.snapshot()
    steps = int(snap.progress.global_step)
    if steps == 0 and not snap.epochs:
        return None
    test_acc = test_loss = None
    kept_epoch = getattr(snap.extras.get("early_stop"), "best_epoch", 0)  # early stopping kept its weights
    kept = [e for e in snap.epochs if e.epoch == kept_epoch] if snap.progress.status == Status.DONE else []
    if kept:
        test_acc, test_loss = kept[-1].test_acc, kept[-1].test_loss
    elif snap.epochs and steps == snap.epochs[-1].epoch * session.steps_per_epoch:
        test_acc, test_loss = snap.epochs[-1].test_acc, snap.epochs[-1].test_loss
    elif evaluate_final and snap.progress.status not in PROBLEM:
        test_loss, test_acc = session.evaluate("test")
    xs, ys = downsample(snap.steps, snap.losses, MAX_LOSS_POINTS)
    started = session.started_at or session.created_at
    ended = session.finished_at or time.time()
    device = torch.device(session.device_name)
    return RunRecord(
        run_id=run_id or session.run_id,
        created_at=float(started),
        spec=session.spec,
        config=session.config,
        device=device.type,
        device_name=describe_device(device).name,
        status=snap.progress.status,
        duration_s=max(0.0, float(ended - started)),
        steps=steps,
        params=sum(layer.params for layer in layer_summary(session.spec)),
        epochs=tuple(snap.epochs),
        test_acc=test_acc,
        test_loss=test_loss,
        loss_steps=tuple(int(s) for s in xs),
        loss_values=tuple(float(v) for v in ys),
        lr_changes=tuple(snap.lr_changes),
        engine=str(getattr(session, "engine_name", "")),
        fork=getattr(session, "forked_from", None),
    )


class RunHistory:
    """The runs of one browser session, newest last (thread-safe: the training thread adds to it)."""

    def __init__(self, limit: int = MAX_HISTORY):
        self._lock = threading.Lock()
        self._runs: list[RunRecord] = []
        self.limit = limit
        self.version = 0

    def add(self, record: RunRecord) -> None:
        """Add or replace (same ``run_id``) a record."""
        with self._lock:
            self._runs = [r for r in self._runs if r.run_id != record.run_id]
            self._runs.append(record)
            del self._runs[: max(0, len(self._runs) - self.limit)]
            self.version += 1

    def remove(self, run_id: str) -> None:
        with self._lock:
            self._runs = [r for r in self._runs if r.run_id != run_id]
            self.version += 1

    def get(self, run_id: str) -> RunRecord | None:
        with self._lock:
            return next((r for r in self._runs if r.run_id == run_id), None)

    def records(self) -> list[RunRecord]:
        with self._lock:
            return list(self._runs)

    def __len__(self) -> int:
        with self._lock:
            return len(self._runs)


class RunRecorder(TrainingCallback):
    """TrainingSession callback: when the run ends, its record goes into ``history``.

    Runs in the training thread; ``history`` is a plain object (no streamlit here).
    """

    def __init__(self, history: RunHistory):
        self.history = history
        self.record: RunRecord | None = None

    def on_end(self, session: Any) -> None:
        record = record_from_session(session)
        if record is not None:
            self.record = record
            self.history.add(record)


DISABLED = ("off", "none", "0", "false")


def disk_enabled() -> bool:
    """False when ``DLPLAY_RUNS_DIR`` is ``off`` (e.g. a public server where users should not share a folder)."""
    return (os.environ.get("DLPLAY_RUNS_DIR") or "").strip().lower() not in DISABLED


def default_runs_dir() -> Path:
    """``$DLPLAY_RUNS_DIR``, else ``runs/`` in dlplay's cache folder (``~/.cache/dlplay/runs`` by default)."""
    env = os.environ.get
    if runs_dir := env("DLPLAY_RUNS_DIR"):
        return Path(runs_dir).expanduser()
    if cache_dir := env("DLPLAY_CACHE_DIR"):
        return Path(cache_dir).expanduser() / "runs"
    xdg = env("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "dlplay" / "runs"


class RunStore:
    """Runs saved on disk: ``<folder>/<run_id>.json``, one complete file per run, written atomically."""

    def __init__(self, folder: str | os.PathLike | None = None):
        self.folder = Path(folder) if folder is not None else default_runs_dir()

    def path_for(self, run_id: str) -> Path:
        if not _RUN_ID.match(run_id):
            raise ValueError("bad run id")
        return self.folder / f"{run_id}.json"

    def save(self, record: RunRecord) -> Path:
        path = self.path_for(record.run_id)
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".run-", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(record.to_json())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def delete(self, run_id: str) -> bool:
        path = self.path_for(run_id)
        if path.exists():
            path.unlink()
            return True
        return False

    def load(self, run_id: str) -> RunRecord:
        path = self.path_for(run_id)
        if path.stat().st_size > MAX_RUN_FILE_BYTES:
            raise ValueError("run file too large")
        return RunRecord.from_json(path.read_text(encoding="utf-8"))

    def load_all(self) -> tuple[list[RunRecord], int]:
        """All readable saved runs, oldest first, and the number of files that could not be read."""
        if not self.folder.is_dir():
            return [], 0
        records, bad = [], 0
        for path in sorted(self.folder.glob("*.json")):
            try:
                records.append(self.load(path.stem))
            except Exception:  # noqa: BLE001 - a damaged or foreign file costs only itself
                bad += 1
        records.sort(key=lambda r: (r.created_at, r.run_id))
        return records, bad

    def saved_ids(self) -> set[str]:
        if not self.folder.is_dir():
            return set()
        return {p.stem for p in self.folder.glob("*.json") if _RUN_ID.match(p.stem)}


# ------------------------------------------------------------------ comparing runs

def architecture_label(spec: ModelSpec) -> str:
    """A compact name: ``784-128-10`` for a perceptron, ``C8k3-MP2-128-10`` with conv and pooling."""
    kinds = [LAYER_KINDS[layer.kind] for layer in spec.layers]
    parts = [str(spec.flat_input_size())] if all(kind.fully_connected for kind in kinds) else []
    parts += [kind.short(layer) for kind, layer in zip(kinds, spec.layers)]
    parts.append(str(spec.num_classes))
    return "-".join(parts)


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def run_fields(record: RunRecord) -> dict[str, str]:
    """The settings of a run as text, by field name (the rows of the comparison table)."""
    spec, cfg = record.spec, record.config
    layers = " → ".join(
        layer.describe() + (f" + Dropout {layer.dropout:g}" if layer.dropout else "") for layer in spec.layers
    ) or "—"
    return {
        "architecture": architecture_label(spec),
        "layers": layers,
        "init": spec.init,
        "params": f"{record.params:,}",
        "optimizer": cfg.optimizer,
        "lr": _fmt(cfg.lr),
        "schedule": cfg.schedule,
        "lr_changes": ", ".join(f"{lr:g}@{s}" for s, lr in record.lr_changes) or "—",
        "batch_size": str(cfg.batch_size),
        "epochs": str(cfg.epochs),
        "weight_decay": _fmt(cfg.weight_decay),
        "seed": str(cfg.seed),
        "dataset": cfg.dataset,
        "train_size": _fmt(cfg.train_size),
        "val_share": f"{cfg.val_share:.0%}",
        "patience": str(cfg.patience) if cfg.patience else "—",
        "label_edits": edits_label(cfg.label_edits),
        "device": device_label(record),
        "engine": record.engine or "—",
    }


def edits_label(edits: tuple[tuple[int, int], ...], shown: int = 8) -> str:
    """A run's label edits as in its share link (``12:3, 40:d``: image 12 is a 3, image 40 dropped), the
    first ``shown`` of them and how many more."""
    if not edits:
        return "—"
    text = ", ".join(f"{i}:{'d' if label < 0 else label}" for i, label in edits[:shown])
    return text + (f" … (+{len(edits) - shown})" if len(edits) > shown else "")


def device_label(record: RunRecord) -> str:
    """``CPU`` or ``MPS``; for CUDA the GPU's name (e.g. ``NVIDIA H200``)."""
    if record.device == "cuda" and record.device_name:
        return record.device_name
    return record.device.upper()


def differing_fields(records: Iterable[RunRecord]) -> list[str]:
    """Names of the settings that are not the same in all ``records`` (in table order)."""
    rows = [run_fields(r) for r in records]
    if not rows:
        return []
    return [name for name in rows[0] if len({row[name] for row in rows}) > 1]


def result_fields(record: RunRecord) -> dict[str, str]:
    """What a run reached, as text: final test accuracy and loss, status, steps, time."""
    return {
        "status": record.status,
        "test_acc": "—" if record.test_acc is None else f"{record.test_acc:.2%}",
        "test_loss": "—" if record.test_loss is None else f"{record.test_loss:.4f}",
        "train_acc": "—" if record.train_acc is None else f"{record.train_acc:.2%}",
        "val_acc": "—" if not record.epochs or record.epochs[-1].val_acc is None else f"{record.epochs[-1].val_acc:.2%}",
        "epochs_done": str(len(record.epochs)),
        "steps": f"{record.steps:,}",
        "duration": f"{record.duration_s:.1f} s",
    }


def with_label(record: RunRecord, label: str) -> RunRecord:
    return replace(record, label=label.strip()[:200])

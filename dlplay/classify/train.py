"""TrainingSession: the training loop in a background thread, steered by a small command surface.

The UI thread never trains and this thread never touches the UI. Data stays on the training
device as uint8 and is normalised per batch there; losses accumulate on the device and reach the
host every ``sync_every`` steps (with the count of correct predictions), or sooner when
MAX_SYNC_S has passed (slow steps, e.g. a CNN on a CPU: the page never waits long for progress),
so there is no host synchronisation and no bookkeeping kernel per step.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dlplay.classify.callbacks import TrainingHooks
from dlplay.classify.earlystop import EarlyStopping
from dlplay.classify.pins import PinsSnapshot, check_pins, pins_of
from dlplay.classify.probe import ProbeSnapshot, probe_of
from dlplay.classify.resume import ResumeState, cpu_copy
from dlplay.classify.split import is_prefix, make_split
from dlplay.data.augment import batch_augmenter
from dlplay.data.datasets import DatasetInfo, normalize_with
from dlplay.errors import UserError
from dlplay.nn.engine import DenseEngine
from dlplay.nn.engine import supports as engine_supports
from dlplay.nn.model import Net, build_model, eval_mode
from dlplay.nn.optimizers import make_optimizer, make_update
from dlplay.nn.spec import ModelSpec, TrainConfig, lr_factor
from dlplay.run import cudagraph
from dlplay.run.device import choose_device
from dlplay.run.loop import Diverged, RunLoop, StopRun
from dlplay.run.metrics import EpochRecord, MetricsSnapshot

EXPLODED_FACTOR = 100.0  # a loss this many times its first value blew up (Adam at lr 10: 2.3 -> 9.5e5)
CHANCE_MARGIN = 0.05  # test accuracy within this of 1/classes after an epoch: the network only guesses
DEAD_SHARE = 0.5  # this share of ReLU units dead (never active on the probe images) counts as broken
EVAL_CHUNK = 512  # test images per chunk of the end-of-epoch evaluation (each chunk reports progress)
MAX_SYNC_S = 0.25  # a host sync (and progress on the page) at least this often, however slow the steps
EVAL_BATCH = 256  # test-set batches: cache-sized on the CPU (the small CNN: ~2x faster than 2000)

_Stop = StopRun  # the names this module used before the run machinery moved to dlplay.run.loop
_Diverged = Diverged


class TrainingSession(RunLoop):
    """One run: a model, its optimiser, a dataset on a device, and the thread that trains them.

    The in-process implementation of :class:`dlplay.classify.handle.RunHandle`: commands (any thread)
    ``start``, ``pause``, ``resume``, ``step``, ``stop``, ``set_lr``, ``set_pace``,
    ``set_probe_every``, ``heartbeat``; reads ``snapshot()``, ``probe_snapshot()``, ``status``,
    ``state_dict()``, ``model_copy()``, ``evaluate()``, ``test_split()``.
    ``callbacks`` are objects with any of ``on_start(session)``, ``after_backward(session, step)``,
    ``after_step(session, step)``, ``on_sync(session)``, ``on_epoch_end(session, record)``,
    ``on_end(session)``; they run in the training thread (:mod:`dlplay.classify.callbacks`: the
    ``TrainingHooks`` Protocol, and ``TrainingCallback``, a base class whose hooks do nothing).

    ``engine``: ``"auto"`` trains a network of dense layers with :class:`~dlplay.nn.engine.DenseEngine`
    (the tutorial's equations, no autograd) and anything else with autograd; ``"autograd"`` always
    uses autograd. ``self.engine`` is the dense engine or None; ``engine_name`` says which trains.

    ``cuda_graph``: ``"auto"`` replays each full-size training step from captured CUDA graphs on a CUDA
    device (:mod:`dlplay.run.cudagraph`; never on the CPU or MPS), ``"off"`` never; a backend object (the
    tests' CPU stand-in) uses that backend on any device. ``self.cuda_graph`` is the
    :class:`~dlplay.run.cudagraph.GraphedStep` or None; ``progress.cuda_graph`` says whether it is on.

    The thread, commands, gate, pace, slots and status are :class:`~dlplay.run.loop.RunLoop`'s; this
    class adds the classification task: model, data, its step, metrics, warnings and evaluation.
    """

    thread_name = "dlplay-train"

    def __init__(
        self,
        spec: ModelSpec,
        config: TrainConfig,
        dataset: Any,
        device: torch.device | str | None = None,
        *,
        sync_every: int = 50,
        callbacks: Iterable[TrainingHooks] = (),
        heartbeat_timeout: float | None = None,
        slot_pool: Any = None,
        history_capacity: int = 8192,
        engine: str = "auto",
        start_from: ResumeState | None = None,
        cuda_graph: str | cudagraph.GraphBackend = "auto",
    ):
        super().__init__(torch.device(device) if device is not None else choose_device(config.device),
                         sync_every=sync_every, callbacks=callbacks, heartbeat_timeout=heartbeat_timeout,
                         slot_pool=slot_pool, history_capacity=history_capacity)
        self.spec = spec
        self.config = config
        self.dataset = dataset.to(self.device)
        self.model: Net = build_model(spec, seed=config.seed).to(self.device)
        # a convolutional network on the CPU trains in channels-last memory format (oneDNN's
        # convolutions: the small CNN preset about 3x faster at batch 32, bench/cnn_throughput.py);
        # a memory format only, state_dict() hands out the usual contiguous layout
        self.channels_last = self.device.type == "cpu" and _has_conv(self.model)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # not in Module.to's stubs
        self.optimizer = make_optimizer(config.optimizer, self.model.parameters(), config.lr, config.weight_decay)
        # a fork (dlplay/classify/fork.py): start from another run's saved state instead of step 0
        self._start_from = start_from
        self.forked_from = start_from.origin if start_from is not None else None  # (run, step, change, old, new)
        if start_from is not None:
            start_from.load_into(self.model, self.optimizer, config)
        if engine not in ("auto", "autograd"):
            raise ValueError(engine)
        # the step function is chosen once per run
        self.engine = DenseEngine(self.model, self.optimizer) if engine == "auto" and engine_supports(self.model) else None
        self.engine_name = self.engine.name if self.engine is not None else "autograd"
        self._train_step = self._engine_step if self.engine is not None else self._autograd_step
        self._params = list(self.model.parameters())
        self._update = make_update(self.optimizer, self._params)
        # on a GPU: the step replayed from CUDA graphs where it can be (dlplay/run/cudagraph.py)
        self.cuda_graph: cudagraph.GraphedStep | None = None
        graph_state = self._graph_step(cuda_graph)
        info = self.dataset.info
        self._scale = 1.0 / (255.0 * info.std)
        self._neg_shift = torch.tensor(-info.mean / info.std, dtype=torch.float32, device=self.device)
        # the validation split and the learner's label edits (dlplay/classify/split.py): which images train
        self.split = make_split(config, self.dataset.train_labels, spec.num_classes)
        self.train_size = len(self.split.train)
        self.augmenter = batch_augmenter(config.augment, config.seed, self.device)  # identity when off
        self.steps_per_epoch = math.ceil(self.train_size / config.batch_size)
        self.total_steps = self.steps_per_epoch * config.epochs
        if start_from is not None:  # the fork's steps so far plus its remaining ones (at its batch size)
            self.total_steps = start_from.total_steps(self.train_size, config.batch_size, config.epochs)
        self._base_lr = config.lr  # the learning rate the user chose (set_lr changes it); the schedule scales it
        self._test_cpu: tuple[torch.Tensor, torch.Tensor] | None = None
        self.metrics.update_progress(
            epochs=config.epochs, steps_per_epoch=self.steps_per_epoch, total_steps=self.total_steps, lr=config.lr,
            engine=self.engine_name, cuda_graph=graph_state,
        )
        if start_from is not None:
            self.metrics.update_progress(global_step=start_from.step, epoch=start_from.epoch)

    # ----- commands (the others are RunLoop's) ---------------------------------------------
    def set_probe_every(self, every: int) -> None:
        """Measure the layers every ``every`` steps from now on (no effect on a run without a probe)."""
        probe = probe_of(self.callbacks)
        if probe is not None:
            probe.set_every(every)

    def set_pins(self, images: torch.Tensor | np.ndarray | None, labels: torch.Tensor | np.ndarray | None = None) -> None:
        """Follow these uint8 images' ten probabilities at the probe interval from the next step
        (None: none); ``labels`` their true classes (-1: unknown). See dlplay/classify/pins.py."""
        pins = pins_of(self.callbacks)
        if pins is None:
            raise UserError("pins.no_pins")
        if images is not None and len(images):
            images, labels = check_pins(images, labels, tuple(self.dataset.train_images.shape[1:]), self.spec.num_classes)
        pins.set_pins(images, labels)

    # ----- the loop's public state, what hooks read (dlplay.classify.callbacks.TrainingState) -----
    @property
    def global_step(self) -> int:
        """Steps done so far (the last finished step's number)."""
        return self._global_step

    @property
    def consumed(self) -> int:
        """Training images used so far in the current epoch."""
        return self._consumed

    def capture_state(self) -> ResumeState:
        """The state of a run between two steps, right after a host sync (its epoch sums are current).

        Reads the training loop's own fields: it runs in the training thread (a callback's on_sync)."""
        consumed, epoch, perm = self._consumed, self._epoch, None
        if consumed >= self.train_size:  # the epoch is done (its evaluation may be under way): the next one
            consumed, epoch = 0, epoch + 1
        elif self._perm_epoch == epoch:  # this epoch's permutation is drawn (perhaps not yet used)
            perm = self._perm.cpu().clone()
        device = self.device
        with self.model_lock:
            model_state = self.state_dict()
            optimizer_state = cpu_copy(self.optimizer.state_dict())
        return ResumeState(
            step=self._global_step,
            epoch=epoch,
            consumed=consumed,
            perm=perm,
            gen_state=self._batch_gen.get_state(),
            rng_state=torch.get_rng_state(),
            cuda_rng_state=torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            model_state=model_state,
            optimizer=self.config.optimizer,
            optimizer_state=optimizer_state,
            base_lr=float(self._base_lr),
            epoch_loss_sum=float(self._epoch_loss_sum) if consumed else 0.0,
            epoch_correct=int(self._epoch_correct) if consumed else 0,
            run_id=self.run_id,
            train_size=int(self.train_size),
        )

    def resume_state(self, step: int) -> ResumeState:
        """The run's exact state after ``step`` steps, to fork a new run from (dlplay/classify/fork.py: replayed
        from the nearest snapshot the run kept). Needs the run's snapshot keeper among its callbacks."""
        replay_to = next((fn for cb in self.callbacks if callable(fn := getattr(cb, "resume_state", None))), None)
        if replay_to is None:
            raise UserError("fork.no_snapshots")
        return replay_to(self, step)

    # ----- reads ----------------------------------------------------------------------------
    @property
    def dataset_info(self) -> DatasetInfo:
        return self.dataset.info

    def snapshot(self) -> MetricsSnapshot:
        return self.metrics.snapshot()

    def probe_snapshot(self) -> ProbeSnapshot | None:
        """The probe's latest measurements (None: the run has no probe, or it has not published yet)."""
        probe = probe_of(self.callbacks)
        return probe.snapshot() if probe is not None else None

    def pins_snapshot(self) -> PinsSnapshot | None:
        """The pinned images' probabilities so far (None: the run follows no pins)."""
        pins = pins_of(self.callbacks)
        return pins.snapshot() if pins is not None else None

    def probe_every(self) -> int | None:
        """Steps between two measurements of the layers now (None: the run has no probe)."""
        probe = probe_of(self.callbacks)
        return probe.every if probe is not None else None

    def state_dict(self) -> dict[str, torch.Tensor]:
        """A consistent CPU copy of the weights (and buffers), taken between two steps."""
        with self.model_lock:
            return {k: v.detach().to("cpu", memory_format=torch.contiguous_format, copy=True)
                    for k, v in self.model.state_dict().items()}

    def model_copy(self, device: str | torch.device = "cpu") -> Net:
        """A network built from the spec with a consistent copy of the current weights (eval mode).

        Built on the meta device and then filled, so no initialisation runs: the global random
        generator, which the training thread draws its dropout masks from, is left alone.
        """
        with torch.device("meta"):
            clone = Net(self.spec)
        clone = clone.to_empty(device=device)
        clone.load_state_dict(self.state_dict(), strict=True)
        return clone.eval()

    def test_split(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The test images (uint8) and labels on the CPU (copied once from the training device)."""
        if self._test_cpu is None:
            self._test_cpu = (self.dataset.test_images.cpu(), self.dataset.test_labels.cpu())
        return self._test_cpu

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images -> the float input the network trains on."""
        return normalize_with(images, self._neg_shift, self._scale)

    @torch.inference_mode()
    def evaluate(self, split: str = "test", batch_size: int = EVAL_BATCH) -> tuple[float, float]:
        """Mean loss and accuracy on a split (``test``, ``train``, ``val``) with the current weights
        (one host sync); an empty validation split gives NaN."""
        images, labels = self._split_tensors(split)
        if not len(labels):
            return math.nan, math.nan
        return self._evaluate_on(images, labels, batch_size)

    # ----- the run's data splits (dlplay/classify/split.py) ------------------------------------------
    def _split_tensors(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The images and (edited) labels of ``split`` on the training device."""
        if split == "test":
            return self.dataset.test_images, self.dataset.test_labels
        if split == "train" and is_prefix(self.split):  # a plain slice: no copy of the images
            return self.dataset.train_images[: self.train_size], self.split.labels[: self.train_size]
        if split not in ("train", "val"):
            raise ValueError(split)
        idx = self.split.train if split == "train" else self.split.val
        return torch.index_select(self.dataset.train_images, 0, idx), self.split.labels[idx]

    def split_data(self, split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(uint8 images, labels with the run's edits, indices in the dataset's split) of ``test``,
        ``train`` or ``val``, on the CPU."""
        if split == "test":
            images, labels = self.test_split()
            return images, labels, torch.arange(len(labels))
        images, labels = self._split_tensors(split)
        idx = self.split.train if split == "train" else self.split.val
        return images.cpu(), labels.cpu(), idx.cpu()

    @torch.inference_mode()
    def _evaluate_val(self) -> tuple[float | None, float | None]:
        """The end-of-epoch validation (None, None without a split); Stop answers between batches."""
        if not len(self.split.val):
            return None, None

        def report(done: float) -> None:
            if self._stop_requested:
                raise _Stop()

        if self._val_data is None:
            self._val_data = self._split_tensors("val")
        return self._evaluate_on(*self._val_data, EVAL_BATCH, report)

    def _early_stop(self, early: EarlyStopping, record: EpochRecord) -> bool:
        """After an epoch: True when early stopping ends the run here (its best weights are put back)."""
        stop = early.update(record.epoch, record.val_loss if record.val_loss is not None else math.nan, self.model)
        if stop or record.epoch == self.config.epochs:
            with self.model_lock:
                early.restore(self.model, record.epoch)
        self.metrics.set_extra("early_stop", early.info())
        return stop

    def _evaluate_on(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
                     report: Callable[[float], None] | None = None) -> tuple[float, float]:
        """A convolutional network on the CPU is evaluated on a channels-last copy of its weights (taken
        under the model lock, which is then free for the UI): with batches of 256 about 3x faster than
        the training layout in batches of 2000 (the small CNN's 10k test images)."""
        if self.channels_last:
            with self.model_lock:
                model = copy.deepcopy(self.model)
            return self._evaluate(model.to(memory_format=torch.channels_last).eval(), images, labels, batch_size, report)  # type: ignore[call-overload]  # memory_format: not in Module.to's stubs
        with self.model_lock, eval_mode(self.model):
            return self._evaluate(self.model, images, labels, batch_size, report)

    def _evaluate(self, model: Net, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
                  report: Callable[[float], None] | None = None) -> tuple[float, float]:
        """``report(share done)`` after each batch (it may raise to stop)."""
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.int64)
        n = len(labels)
        for i in range(0, n, batch_size):
            out = model(self.normalize(images[i : i + batch_size]))
            y = labels[i : i + batch_size]
            loss_sum += F.cross_entropy(out, y, reduction="sum")
            correct += (out.argmax(1) == y).sum()
            if report is not None:
                report(min(n, i + batch_size) / n)
        return loss_sum.item() / max(1, n), correct.item() / max(1, n)

    # ----- the loop -------------------------------------------------------------------------
    def _change_lr(self, lr: float) -> None:
        """A learning rate set with ``set_lr``: the schedule scales it from the next step on."""
        self._base_lr = lr
        self._apply_lr(self._global_step + 1)
        self.metrics.add_lr_change(self._global_step + 1, lr)
        self.metrics.update_progress(lr=self.current_lr)

    @property
    def current_lr(self) -> float:
        """The learning rate of the latest step (the chosen one scaled by the schedule)."""
        return float(self.optimizer.param_groups[0]["lr"])

    def _apply_lr(self, step: int) -> None:
        lr = self._base_lr * lr_factor(self.config.schedule, step, self.total_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def _flush(self) -> None:
        """Copy accumulated losses to the host (the only sync in the hot loop); detect divergence."""
        k = len(self._pending_losses)
        if k == 0:
            return
        # one host sync for the whole window: its losses and how many of its predictions were right
        outputs, targets = zip(*self._pending_outputs)
        hits = (torch.cat(outputs).argmax(1) == torch.cat(targets)).sum()  # a few kernels per window, not per step
        # float32 (MPS has no float64); a window's hit count (< 50 x 8192) stays exact in float32
        packed = torch.cat([torch.stack(self._pending_losses).float(), hits.reshape(1).float()])
        *losses, correct = packed.tolist()
        self._pending_losses.clear()
        self._pending_outputs.clear()
        self._epoch_correct += int(correct)
        first = self._global_step - k + 1
        self._epoch_loss_sum += sum(losses)
        self.metrics.append_losses(first, losses)
        now = time.perf_counter()
        rate = self._samples_since_sync / max(now - self._sync_time, 1e-9)
        self._sync_time, self._samples_since_sync = now, 0
        remaining = (self.total_steps - self._global_step) * self.config.batch_size
        self.metrics.update_progress(
            global_step=self._global_step,
            epoch=self._epoch,
            step_in_epoch=self._step_in_epoch,
            samples_per_s=rate,
            elapsed_s=time.time() - (self.started_at or time.time()),
            eta_s=remaining / rate if rate > 0 else None,
            lr=self.current_lr,
        )
        if not all(math.isfinite(v) for v in losses):
            raise _Diverged(first + next(i for i, v in enumerate(losses) if not math.isfinite(v)))
        self._watch_loss(first, losses)
        self._call("on_sync")

    def _warn(self, key: str = "", **params: Any) -> None:
        """A warning on the progress (the run goes on): ``key`` is a translation key, "" clears it."""
        self.metrics.update_progress(warning=key, warning_params=tuple(sorted(params.items())))

    def _watch_loss(self, first: int, losses: list[float]) -> None:
        """After a sync: a finite loss that exploded far above its first value is worth a warning
        (a NaN ends the run as diverged; this one goes on, often stuck at chance, see _check_learning)."""
        if self._start_loss is None:
            self._start_loss = losses[0]
        peak = max(losses)
        if self._exploded is None and peak > EXPLODED_FACTOR * max(self._start_loss, 1e-3):
            step = first + losses.index(peak)
            self._exploded = {"peak": peak, "step": step}
            self._warn("train.warn_exploded", start=self._start_loss, lr=self.current_lr, **self._exploded)

    def _dead_share(self) -> float | None:
        """Share of the ReLU-family units the probe found dead (latest readings), if it measured any."""
        probe = self.metrics.snapshot().extras.get("probe")
        if probe is None or not len(probe.steps):
            return None
        dead = probe.recent("dead")
        units = [(d, layer.units) for d, layer in zip(dead, probe.layers) if layer.relu_family and math.isfinite(d)]
        total = sum(u for _, u in units)
        return sum(d * u for d, u in units) / total if total else None

    def _check_learning(self, record: EpochRecord) -> None:
        """After an epoch: test accuracy no better than guessing gets a warning that says why if it
        can (the loss exploded, ReLU units died) and what to try; it clears once the network learns."""
        chance = 1.0 / self.spec.num_classes
        exploded = self._exploded or {}
        if record.test_acc > chance + CHANCE_MARGIN:
            if not self.metrics.progress.warning.startswith("train.warn_chance"):
                return
            if exploded:  # it learns again: the explosion stays worth knowing
                self._warn("train.warn_exploded", start=self._start_loss, lr=self.current_lr, **exploded)
            else:
                self._warn()
            return
        params: dict[str, Any] = {"epoch": record.epoch, "acc": record.test_acc, "chance": chance, **exploded}
        dead = self._dead_share()
        if dead is not None and dead >= DEAD_SHARE:
            params["dead"] = float(dead)
        broken = bool(exploded) or "dead" in params
        self._warn("train.warn_chance_broken" if broken else "train.warn_chance", lr=self.current_lr, **params)

    @torch.inference_mode()
    def _evaluate_test(self) -> tuple[float, float]:
        """The end-of-epoch test evaluation, its progress reported in ``progress.evaluating`` about every
        EVAL_CHUNK images (a CNN's takes seconds on a CPU: the page shows it instead of freezing); Stop
        answers between batches."""
        last = [0.0]

        def report(done: float) -> None:
            if self._stop_requested:
                raise _Stop()
            if done >= 1.0 or done - last[0] >= EVAL_CHUNK / max(1, n):
                last[0] = done
                self.metrics.update_progress(evaluating=done)

        n = len(self.dataset.test_labels)
        self.metrics.update_progress(evaluating=0.0)
        try:
            return self._evaluate_on(self.dataset.test_images, self.dataset.test_labels, EVAL_BATCH, report)
        except _Stop:
            self.metrics.update_progress(evaluating=None)
            raise

    # the loop's state, set by _run / _loop (declared here so that mypy knows their types everywhere)
    _epoch_loss_sum: float
    _samples_since_sync: int
    _start_loss: float | None
    _exploded: dict[str, Any] | None
    _batch_gen: torch.Generator  # the generator of the epochs' permutations
    _perm: torch.Tensor  # this epoch's permutation of the training images
    _perm_epoch: int  # the epoch _perm was drawn for (-1: none yet)
    _consumed: int  # images of this epoch's permutation trained on so far
    _val_data: tuple[torch.Tensor, torch.Tensor] | None  # the validation images and labels, gathered once

    def _prepare(self) -> None:
        self._epoch = 0
        self._step_in_epoch = 0
        self._pending_losses: list[torch.Tensor] = []
        self._pending_outputs: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._epoch_correct = 0
        self._samples_since_sync = 0
        self._epoch_loss_sum = 0.0

    def _diverged_message(self, step: int) -> tuple[str, dict[str, Any]]:
        return "train.msg_diverged", {"step": step, "lr": self.optimizer.param_groups[0]["lr"]}

    def _loop(self) -> None:
        cfg = self.config
        images, labels = self._split_tensors("train")  # the split's training images, label edits applied
        self._val_data = None
        early = EarlyStopping(cfg.patience) if cfg.patience else None
        gen = torch.Generator().manual_seed(cfg.seed)
        torch.manual_seed(cfg.seed)  # dropout masks
        # --- a fork (dlplay/classify/fork.py) carries on from a saved state: its step, the rest of its epoch's
        # permutation (skip: images of it already trained on) and its random generators
        first_epoch, skip, perm = 0, 0, None
        start = self._start_from
        if start is not None:
            first_epoch, skip, perm = start.epoch, start.consumed, start.restore_generators(gen, self.device)
            self._global_step = start.step
            self._epoch = start.epoch
        self._consumed = skip
        self._batch_gen, self._perm_epoch = gen, -1  # read by a fork's snapshots (dlplay/classify/fork.py)
        # --- end of the fork's part
        scheduled = cfg.schedule != "constant"
        self.model.train()
        self._start_loss = None
        self._exploded = None
        self._call("on_start")
        for epoch in range(first_epoch, cfg.epochs):
            if perm is None:
                perm = torch.randperm(self.train_size, generator=gen).to(self.device)
            self._perm, self._perm_epoch = perm, epoch
            self._epoch_loss_sum = 0.0
            self._epoch_correct = 0
            if skip and start is not None:  # a fork resumed mid-epoch: the epoch's sums so far
                self._epoch_loss_sum, self._epoch_correct = start.epoch_loss_sum, start.epoch_correct
            # the steps left in this epoch: all of them, or after a fork the rest of the permutation
            first_i = self.steps_per_epoch - math.ceil((self.train_size - skip) / cfg.batch_size)
            t_epoch = time.perf_counter()
            for i in range(first_i, self.steps_per_epoch):
                self._gate()
                self._regain_slot()
                window = self.sync_every if self._pace is None else self._sync_window()
                if scheduled:
                    self._apply_lr(self._global_step + 1)
                lo = skip + (i - first_i) * cfg.batch_size
                idx = perm[lo : lo + cfg.batch_size]
                # index_select: on CPU about 40 us per batch faster than images[idx]
                x = self.normalize(self.augmenter(torch.index_select(images, 0, idx)))
                y = torch.index_select(labels, 0, idx)
                with self.model_lock:
                    loss, out = self._train_step(x, y)
                # kept as device tensors until the next flush: no host sync and no extra kernels per step
                self._pending_losses.append(loss.detach())
                self._pending_outputs.append((out.detach(), y))
                self._samples_since_sync += len(y)
                self._step_in_epoch = i + 1
                self._consumed = min(lo + cfg.batch_size, self.train_size)
                if (len(self._pending_losses) >= window or self._single_step or i + 1 == self.steps_per_epoch
                        or time.perf_counter() - self._sync_time >= MAX_SYNC_S):
                    self._single_step = False
                    self._flush()
            perm, skip = None, 0
            self._epoch = epoch + 1
            self._consumed = 0
            seconds = time.perf_counter() - t_epoch
            test_loss, test_acc = self._evaluate_test()
            val_loss, val_acc = self._evaluate_val()
            self._sync_time = time.perf_counter()  # the next epoch's speed leaves the evaluation out
            record = EpochRecord(
                epoch=epoch + 1,
                train_loss=self._epoch_loss_sum / self.steps_per_epoch,
                train_acc=self._epoch_correct / self.train_size,
                test_loss=test_loss,
                test_acc=test_acc,
                seconds=seconds,
                samples_per_s=self.train_size / max(seconds, 1e-9),
                val_loss=val_loss,
                val_acc=val_acc,
            )
            self.metrics.add_epoch(record)
            self.metrics.update_progress(epoch=epoch + 1, evaluating=None)
            self._check_learning(record)
            self._call("on_epoch_end", record)
            if early is not None and self._early_stop(early, record):
                break


    # ----- one training step: the dense engine's, or autograd's ------------------------------
    def _graph_step(self, choice: str | cudagraph.GraphBackend) -> str:
        """Replay the step from CUDA graphs if ``choice`` and the run allow; the state for the progress
        ("" when no backend applies: the CPU, MPS, or "off")."""
        backend = cudagraph.backend_for(choice, self.device)
        if backend is None:
            return ""
        reason = cudagraph.unsupported(self.model, self.optimizer)
        if reason is not None:
            return reason
        engine = self.engine
        step = cudagraph.GraphedStep(
            self.model, self.optimizer, self.config.batch_size, backend, eager=self._train_step,
            forward_backward=engine.forward_backward if engine is not None else self._forward_backward,
            update=engine.update if engine is not None else self._update,
            accumulates=engine is None, after_backward=self._after_backward, after_step=self._after_step,
            engine=engine, on_state=lambda state: self.metrics.update_progress(cuda_graph=state),
        )
        self.cuda_graph = step
        self._train_step = step
        return step.state

    def _run(self) -> None:
        try:
            super()._run()
        finally:
            if self.cuda_graph is not None:
                self.cuda_graph.release()  # the graphs' memory goes back to the device

    def _forward_backward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Autograd's forward and backward pass without the step's bookkeeping (what CUDA graphs capture):
        the gradients are added to ``.grad``."""
        out = self.model(x)
        loss = F.cross_entropy(out, y)
        loss.backward()
        return loss, out

    def _after_backward(self) -> None:
        self._global_step += 1
        self._call("after_backward", self._global_step)

    def _after_step(self) -> None:
        self._call("after_step", self._global_step)

    def _engine_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loss, out = self.engine.forward_backward(x, y)  # type: ignore[union-attr]
        self._global_step += 1
        self._call("after_backward", self._global_step)
        self.engine.update()  # type: ignore[union-attr]
        self._call("after_step", self._global_step)
        return loss, out

    def _autograd_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(x)
        loss = F.cross_entropy(out, y)
        for p in self._params:  # zero_grad(set_to_none=True) without its bookkeeping
            p.grad = None
        loss.backward()
        self._global_step += 1
        self._call("after_backward", self._global_step)
        self._update()  # the optimiser's fused kernel called directly (optimizers.make_update)
        self._call("after_step", self._global_step)
        return loss, out


def _has_conv(model: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.Conv2d) for m in model.modules())



"""Replaying a captured training step: CUDA graphs for runs whose batches all have one shape.

A training step of the tutorial model at batch 32 launches a few dozen small kernels; on a GPU the
time goes to launching them from Python, not to running them. A CUDA graph records the kernels of
one step once and replays them with one call (PyTorch's "whole network capture":
``torch.cuda.graph``, warm-up on a side stream, static input buffers, a capturable optimiser).
:class:`GraphedStep` wraps a run's step ``(x, y) -> (loss, logits)``:

- **warm-up**: the first ``warmup`` full-size steps run eagerly on the backend's side stream (they
  train, on the real batches: the optimiser's state, the engine's buffers and cuBLAS's workspace
  exist before capture);
- **capture**: two graphs on that stream, sharing one memory pool — forward and backward (∂J/∂W into
  the same gradient tensors every time), then the optimiser's update reading its learning rate from a
  device tensor — so that the run's ``after_backward`` callbacks still run between the backward pass
  and the update, and ``after_step`` after it. Capture runs no kernel: the captured batch trains by
  the first replay;
- **replay**: copy the batch into the static buffers, replay the first graph, clone the loss and the
  logits (the run keeps the last window's tensors until its next flush, and the next replay
  overwrites the static ones), ``after_backward``, write the step's learning rate into its tensor
  (schedules change it every step), replay the second graph, ``after_step``.

A step runs eagerly, graphs kept, when its batch has another size (an epoch's last, smaller batch),
when a hook watches the network (forward or backward hooks on its modules, the dense engine's δ
watcher: the probe's steps) or when the network is not in training mode. The graphs are dropped and
captured again (after a new warm-up) when a tensor they read moved (a parameter, buffer or optimiser
state replaced, e.g. by ``optimizer.load_state_dict``; loading weights in place, as early stopping
does, moves nothing and needs no new capture) or when the optimiser's settings other than the
learning rate changed. A capture that fails turns the graphs off for the run, which goes on eagerly.

What is supported (:func:`unsupported`): one parameter group of PyTorch's fused Adam, AdamW or SGD
(with or without momentum) — their kernels take the learning rate as a tensor; any network except
recurrent ones (cuDNN's recurrent kernels are left out untested). Everything else trains eagerly.

The capture itself sits behind a backend: :class:`CudaGraphs` (the real one) or
:class:`StandInGraphs`, a CPU stand-in for tests: capture remembers the closure, replay calls it
again and checks that it touches the memory a real graph would.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

Step = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
WARMUP_STEPS = 3  # eager steps before a capture (PyTorch's whole-network example takes 3)

# GraphedStep.state (a run's progress.cuda_graph; the Train page's line is cudagraph.<state>)
ON = "on"
OFF_OPTIMIZER = "off_optimizer"  # the optimiser cannot take its learning rate from a tensor
OFF_NETWORK = "off_network"  # a recurrent network
OFF_FAILED = "off_failed"  # a capture failed: the run goes on eagerly

_FUSED_TENSOR_LR = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD)  # AdamW: a subclass of Adam today


class Graph(Protocol):
    """One captured closure: ``replay()`` runs it again; ``outputs`` are its tensors after a replay
    (the same tensors every time, overwritten by each replay); ``pool`` its memory pool."""

    outputs: tuple[torch.Tensor, ...]
    pool: Any

    def replay(self) -> None: ...


class GraphBackend(Protocol):
    """How to warm up and capture: :class:`CudaGraphs` on a GPU, :class:`StandInGraphs` in tests."""

    name: str
    capturable: bool  # the optimiser's group must say capturable=True while its step is captured
    lr_dtype: torch.dtype  # of the learning-rate tensor the captured update reads

    def warm_up(self, fn: Callable[[], Any]) -> Any: ...
    def capture(self, fn: Callable[[], tuple[torch.Tensor, ...]], pool: Any = None) -> Graph: ...


# ----- the real backend ----------------------------------------------------------------------------

_CAPTURE_LOCK = threading.Lock()  # one capture at a time in the process (runs are threads of one server)


class _CudaGraph:
    def __init__(self, graph: Any, outputs: tuple[torch.Tensor, ...]):
        self.graph = graph
        self.outputs = outputs
        self.pool = graph.pool()

    def replay(self) -> None:
        self.graph.replay()  # on the current stream


class CudaGraphs:
    """Warm-up and capture on one side stream of ``device`` (one stream for both: the libraries'
    handles and workspaces, made per stream, exist before the capture)."""

    name = "cuda"
    capturable = True
    lr_dtype = torch.float32  # CUDA's fused kernels read a tensor learning rate as a float

    def __init__(self, device: torch.device | str):
        self.device = torch.device(device)
        with torch.cuda.device(self.device):
            self.stream = torch.cuda.Stream()

    def warm_up(self, fn: Callable[[], Any]) -> Any:
        with torch.cuda.device(self.device):
            current = torch.cuda.current_stream()
            self.stream.wait_stream(current)  # the batch was made on the current stream
            with torch.cuda.stream(self.stream):
                result = fn()
            current.wait_stream(self.stream)  # what follows uses the step's results
            for t in tree_leaves(result):  # ... on the current stream: the allocator must know it
                if isinstance(t, torch.Tensor) and t.is_cuda:
                    t.record_stream(current)
        return result

    def capture(self, fn: Callable[[], tuple[torch.Tensor, ...]], pool: Any = None) -> Graph:
        graph = torch.cuda.CUDAGraph()
        # "thread_local": the app's other threads (the page, other learners' runs) may use the GPU
        # while this thread captures; "global" would make their allocations fail
        with (
            _CAPTURE_LOCK,
            torch.cuda.device(self.device),
            torch.cuda.graph(graph, pool=pool, stream=self.stream, capture_error_mode="thread_local"),
        ):
            outputs = fn()
        return _CudaGraph(graph, outputs)


def backend_for(choice: str | GraphBackend, device: torch.device) -> GraphBackend | None:
    """The backend a run's ``cuda_graph`` setting asks for on ``device``: "auto" is CUDA graphs on a
    CUDA device and nothing elsewhere (CPU, MPS), "off" nothing, a backend object that backend."""
    if not isinstance(choice, str):
        return choice
    if choice not in ("auto", "off"):
        raise ValueError(f"cuda_graph must be 'auto', 'off' or a backend, not {choice!r}")
    if choice == "auto" and device.type == "cuda" and torch.cuda.is_available():
        return CudaGraphs(device)
    return None


def unsupported(model: nn.Module, optimizer: torch.optim.Optimizer) -> str | None:
    """Why this run's step cannot be graphed (a state: OFF_OPTIMIZER, OFF_NETWORK), None if it can."""
    if len(optimizer.param_groups) != 1 or not isinstance(optimizer, _FUSED_TENSOR_LR):
        return OFF_OPTIMIZER
    group = optimizer.param_groups[0]
    if not group.get("fused") or group.get("differentiable") or torch.is_tensor(group["lr"]):
        return OFF_OPTIMIZER
    if any(isinstance(m, nn.RNNBase) for m in model.modules()):
        return OFF_NETWORK
    return None


# ----- the training step, captured ----------------------------------------------------------------

@dataclass
class _Captured:
    x: torch.Tensor  # static input buffers
    y: torch.Tensor
    params: list[torch.Tensor]  # parameters with a gradient, and their static gradients
    grads: list[torch.Tensor]
    forward_backward: Graph
    update: Graph
    lr: torch.Tensor  # the learning rate the update reads (a device tensor)
    lr_value: float  # what it holds
    tensors: list[torch.Tensor]  # the parameters and buffers the graphs read and write
    ptrs: list[int]  # where they and the optimiser's state tensors were at capture
    opt_state: Any  # the optimiser's state dict at capture (load_state_dict replaces it)
    opt_states: int  # how many parameters it had state for
    hyper: tuple[Any, ...]  # the optimiser's settings except params and lr


class GraphedStep:
    """A run's training step, replayed from captured graphs where it can be (see the module doc).

    ``eager(x, y)`` is the run's own step (counts the step, calls the callbacks);
    ``forward_backward(x, y) -> (loss, logits)`` leaves ∂J/∂W in the parameters' ``.grad``;
    ``accumulates``: it adds to ``.grad`` (autograd: the captured pass zeroes the gradients first)
    instead of overwriting it (the dense engine); ``update()`` applies the optimiser;
    ``after_backward()`` / ``after_step()`` count the step and call the run's callbacks;
    ``engine``: the dense engine (its δ watcher makes a step eager); ``on_state(state)`` hears of a
    change of :attr:`state`. Counters for tests and benchmarks: ``warmups``, ``captures``,
    ``replays``, ``eager_steps``.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, batch_size: int,
                 backend: GraphBackend, *, eager: Step, forward_backward: Step, update: Callable[[], Any],
                 accumulates: bool, after_backward: Callable[[], None], after_step: Callable[[], None],
                 engine: Any = None, warmup: int = WARMUP_STEPS,
                 on_state: Callable[[str], None] | None = None):
        self.model = model
        self.optimizer = optimizer
        self.batch_size = batch_size
        self.backend = backend
        self._eager = eager
        self._forward_backward = forward_backward
        self._update = update
        self._accumulates = accumulates
        self._after_backward = after_backward
        self._after_step = after_step
        self._engine = engine
        self.warmup = warmup
        self._on_state = on_state
        # the hook tables of every module (register_*_hook adds to them, a handle's remove() takes out)
        self._hook_tables = [table for m in model.modules() for table in (
            m._forward_hooks, m._forward_pre_hooks, m._backward_hooks, m._backward_pre_hooks)]
        self._graphs: _Captured | None = None
        self._warm = 0  # warm-up steps since the graphs were last dropped
        self.state = ON
        self.error = ""  # why a capture failed
        self.warmups = self.captures = self.replays = self.eager_steps = 0

    # ----- one step ----------------------------------------------------------------------------
    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self._replayable(x, y):
            self.eager_steps += 1
            return self._eager(x, y)
        graphs = self._graphs
        if graphs is not None and not self._still_valid(graphs):
            self.release()  # a tensor moved or a setting changed: warm up and capture again
            graphs = None
        if graphs is None:
            if self._warm < self.warmup:
                self._warm += 1
                self.warmups += 1
                return self.backend.warm_up(lambda: self._eager(x, y))
            try:
                graphs = self._capture(x, y)
            except Exception as exc:  # noqa: BLE001 - the run goes on without graphs, and says so
                self._graphs = None
                self.error = f"{type(exc).__name__}: {exc}"
                self._set_state(OFF_FAILED)
                self.eager_steps += 1
                return self._eager(x, y)
            self._graphs = graphs
            self.captures += 1
        elif graphs.x.shape != x.shape or graphs.y.shape != y.shape:
            self.eager_steps += 1
            return self._eager(x, y)
        return self._replay(graphs, x, y)

    def release(self) -> None:
        """Drop the graphs (and their memory); the next full-size steps warm up and capture again."""
        self._graphs = None
        self._warm = 0

    @property
    def captured(self) -> bool:
        return self._graphs is not None

    # ----- internals ---------------------------------------------------------------------------
    def _set_state(self, state: str) -> None:
        self.state = state
        if self._on_state is not None:
            self._on_state(state)

    def _replayable(self, x: torch.Tensor, y: torch.Tensor) -> bool:
        """Can this step be a replay (else it runs eagerly, graphs kept)?"""
        if self.state != ON or x.shape[0] != self.batch_size or y.shape[0] != self.batch_size:
            return False
        if not self.model.training or not torch.is_grad_enabled():
            return False
        if self._engine is not None and self._engine.watching:
            return False  # the probe reads δ from the engine's own backward pass
        if any(self._hook_tables):  # the probe's forward hooks (then gradient hooks on their outputs)
            return False
        hooks = nn.modules.module
        if (hooks._global_forward_hooks or hooks._global_forward_pre_hooks or hooks._global_backward_hooks
                or hooks._global_backward_pre_hooks):
            return False
        group = self.optimizer.param_groups[0]
        return len(self.optimizer.param_groups) == 1 and not torch.is_tensor(group["lr"])

    def _locations(self, tensors: list[torch.Tensor]) -> list[int]:
        """Where ``tensors`` (parameters, buffers) and the optimiser's state tensors are now."""
        ptrs = list(map(torch.Tensor.data_ptr, tensors))
        for state in self.optimizer.state.values():
            ptrs += [v.data_ptr() for v in state.values() if isinstance(v, torch.Tensor)]
        return ptrs

    def _hyper(self) -> tuple[Any, ...]:
        group = self.optimizer.param_groups[0]
        return tuple(v for k, v in sorted(group.items()) if k not in ("params", "lr"))

    def _still_valid(self, graphs: _Captured) -> bool:
        """Every step on a GPU, so cheap: the optimiser's state and settings, and every tensor the graphs
        know still where it was (a parameter swapped for another object, load_state_dict(assign=True),
        is not looked for: the optimiser would not train it either)."""
        return (self.optimizer.state is graphs.opt_state and len(self.optimizer.state) == graphs.opt_states
                and self._locations(graphs.tensors) == graphs.ptrs and self._hyper() == graphs.hyper)

    def _capture(self, x: torch.Tensor, y: torch.Tensor) -> _Captured:
        group = self.optimizer.param_groups[0]
        sx, sy = torch.empty_like(x), torch.empty_like(y)
        if self._accumulates:  # gradients the captured backward adds to, zeroed first by the graph
            with torch.no_grad():
                for p in self.model.parameters():
                    if p.requires_grad and p.grad is None:
                        p.grad = torch.zeros_like(p)
        params: list[torch.Tensor] = [p for p in self.model.parameters() if p.grad is not None]
        grads = [p.grad for p in params if p.grad is not None]
        lr = torch.full((), float(group["lr"]), dtype=self.backend.lr_dtype, device=x.device)
        tensors, hyper = [*self.model.parameters(), *self.model.buffers()], self._hyper()
        accumulates, forward_backward, update = self._accumulates, self._forward_backward, self._update

        def step_forward_backward() -> tuple[torch.Tensor, ...]:
            if accumulates:
                torch._foreach_zero_(grads)
            loss, out = forward_backward(sx, sy)
            return loss.detach(), out.detach()

        capturable = self.backend.capturable

        def step_update() -> tuple[torch.Tensor, ...]:
            # the fused kernels read a tensor learning rate where the update runs: the graph reads
            # ``lr``, which each replay sets; CUDA capture also wants capturable=True on the group
            saved_lr, had_flag, saved_flag = group["lr"], "capturable" in group, group.get("capturable")
            group["lr"] = lr
            if capturable:
                group["capturable"] = True
            try:
                update()
            finally:
                group["lr"] = saved_lr
                if had_flag:
                    group["capturable"] = saved_flag
                else:
                    group.pop("capturable", None)
            return ()

        first = self.backend.capture(step_forward_backward)
        second = self.backend.capture(step_update, pool=first.pool)
        return _Captured(sx, sy, params, grads, first, second, lr, float(group["lr"]), tensors,
                         self._locations(tensors), self.optimizer.state, len(self.optimizer.state), hyper)

    def _load(self, graphs: _Captured, x: torch.Tensor, y: torch.Tensor) -> None:
        """The batch into the static buffers the graphs read."""
        graphs.x.copy_(x)
        graphs.y.copy_(y)

    def _replay(self, graphs: _Captured, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._load(graphs, x, y)
        for p, g in zip(graphs.params, graphs.grads):
            if p.grad is not g:  # an eager autograd step in between set new ones
                p.grad = g
        graphs.forward_backward.replay()
        loss, out = (t.clone() for t in graphs.forward_backward.outputs)
        self._after_backward()
        lr = self.optimizer.param_groups[0]["lr"]
        if lr != graphs.lr_value:  # a schedule or set_lr: one small kernel, no host sync
            graphs.lr.fill_(lr)
            graphs.lr_value = lr
        graphs.update.replay()
        self.replays += 1
        self._after_step()
        return loss, out


# ----- the CPU stand-in, for tests --------------------------------------------------------------

class StaleGraph(RuntimeError):
    """A replay touched memory the captured graph does not know (a real graph would have used the old)."""


class _AddressTrace(TorchDispatchMode):
    """Records, for each operation, where the tensors it reads or writes live — those that the traced
    call did not allocate itself (static buffers, parameters, gradients, optimiser state)."""

    def __init__(self) -> None:
        super().__init__()
        self.trace: list[tuple[str, tuple[int, ...]]] = []
        self._own: set[int] = set()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        inputs = [_storage(t) for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        out = func(*args, **kwargs)
        if func is torch.ops.aten.lift_fresh.default:  # torch.tensor(...) made in the call
            self._own.update(inputs)
            return out
        seen = set(inputs)
        self.trace.append((str(func), tuple(p for p in inputs if p not in self._own)))
        self._own.update(p for p in (_storage(t) for t in tree_leaves(out) if isinstance(t, torch.Tensor))
                         if p not in seen)
        return out


def _storage(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


class _StandInGraph:
    def __init__(self, fn: Callable[[], tuple[torch.Tensor, ...]]):
        self.fn = fn
        self.outputs: tuple[torch.Tensor, ...] = ()
        self.pool = None
        self._trace: list[tuple[str, tuple[int, ...]]] | None = None

    def replay(self) -> None:
        with _AddressTrace() as mode:
            outputs = self.fn()
        if self._trace is None:  # the first replay stands for the capture (nothing changed in between)
            self._trace, self.outputs = mode.trace, outputs
            return
        if mode.trace != self._trace:
            i = next((i for i, (a, b) in enumerate(zip(mode.trace, self._trace)) if a != b),
                     min(len(mode.trace), len(self._trace)))
            where = mode.trace[i][0] if i < len(mode.trace) else "the end"
            raise StaleGraph(f"replay touches other memory than the capture (operation {i}: {where})")
        with torch.no_grad():
            for static, new in zip(self.outputs, outputs):
                static.copy_(new)  # a graph writes its outputs into the same tensors every time


class StandInGraphs:
    """A CPU stand-in for :class:`CudaGraphs`, for tests. ``capture`` remembers the closure without
    running it (a CUDA capture records kernels without executing them); ``replay`` calls it again,
    and the outputs are the first replay's tensors, overwritten by each later one. Every replay must
    read and write the memory the first one did — the tensors it did not allocate itself, operation
    by operation — else :class:`StaleGraph`: where a real graph would silently keep using an old
    buffer (a batch not copied in, a gradient or optimiser state replaced without a new capture),
    the stand-in fails. It does not check CUDA itself: streams, the memory pool, capture rules."""

    name = "stand-in"
    capturable = False  # the capture health check is CUDA's
    lr_dtype = torch.float64  # the CPU kernels read it as a double, as they read a Python float

    def warm_up(self, fn: Callable[[], Any]) -> Any:
        return fn()

    def capture(self, fn: Callable[[], tuple[torch.Tensor, ...]], pool: Any = None) -> Graph:
        return _StandInGraph(fn)

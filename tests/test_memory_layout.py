"""The CPU speed-ups of issue 21 that change no number: gradients handed back channels-last below the
flatten, and freed memory kept for the next step (dlplay/run/memory.py)."""
from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

from dlplay.nn.model import build_model
from dlplay.nn.presets import PRESETS


def _grads(channels_last: bool) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
    model = build_model(PRESETS["small_cnn"].spec, seed=3).train()
    x = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    record: list = []
    torch.manual_seed(0)  # the dropout mask
    out = model(x, record)
    seen: list[torch.Tensor] = []
    for z, _ in record:
        if z.dim() == 4:
            z.register_hook(seen.append)
    F.cross_entropy(out, torch.arange(8) % 10).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters()}, seen


def test_a_channels_last_cnn_gets_channels_last_gradients_and_the_same_numbers():
    cl, seen = _grads(channels_last=True)
    plain, _ = _grads(channels_last=False)
    # every image-shaped gradient on the way back, the one below the flatten first, stays channels-last
    assert seen
    assert all(g.is_contiguous(memory_format=torch.channels_last) and not g.is_contiguous() for g in seen)
    for name, g in plain.items():
        torch.testing.assert_close(cl[name].contiguous(), g, rtol=1e-4, atol=1e-5, msg=name)


def test_an_ordinary_network_is_left_alone():
    model = build_model(PRESETS["tutorial"].spec, seed=0)
    x = torch.randn(4, 1, 28, 28, requires_grad=True)
    model(x).sum().backward()
    assert x.grad is not None
    assert x.grad.is_contiguous()


STEPS = r"""
import resource, sys, threading, torch, torch.nn.functional as F
torch.set_num_threads(1)
from dlplay.run.memory import keep_freed_memory
from dlplay.nn.model import build_model
from dlplay.nn.presets import PRESETS
if sys.argv[1] == "keep":
    assert keep_freed_memory() and keep_freed_memory()  # once per process; True again
model = build_model(PRESETS["small_cnn"].spec, seed=0).train().to(memory_format=torch.channels_last)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
x = torch.randn(32, 1, 28, 28).contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 10, (32,))
def step():
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
def train():  # built in this thread, trained in another: as a run in the app
    for _ in range(5):
        step()
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    for _ in range(10):
        step()
    print((resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before) / 10)
thread = threading.Thread(target=train)
thread.start()
thread.join()
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc")
def test_kept_memory_means_a_cnn_step_stops_page_faulting():
    faults = float(subprocess.run([sys.executable, "-c", textwrap.dedent(STEPS), "keep"], capture_output=True,
                                  text=True, check=True).stdout)
    # a step of the small CNN touches about 20 MB of activations and gradients (5,000 pages): with the
    # memory handed back to the kernel after every step, each of them faults again
    assert faults < 200, f"{faults:.0f} minor page faults per step"

"""How often can the 2-D playground redraw its pictures while three learners train at full speed?

Three PlaneSessions (the spiral, features x₁ x₂, hidden 8-8, tanh, SGD, batch 10: TensorFlow Playground's
recipe) train at full speed in their threads, as three browser sessions' runs do in the app's process.
Measured, with one torch thread (the server's setting):

1. the grid: ``PlaneSession.grid(50)`` — the output and every neuron over 50×50 points, one forward;
2. building what the page sends per redraw: while training (the live PNG path: every node's tile, the
   network PNG, the plane PNG with its points, the enlarged neuron, the loss figure) and when paused
   (the Plotly figures, as JSON);
3. the achievable refresh rate: three "page" threads, one per learner, each redrawing its run's
   pictures (grid + live path) as fast as it can for a while — refreshes per second per learner;
4. training speed: the three sessions' epochs per second, interleaved with a plain PyTorch loop of the
   same network, data and batches in three threads (the baseline), and with the three pages redrawing
   at 10 Hz.

Streamlit's own share of a fragment rerun (widgets, protobuf, websocket) is not in these numbers.

    OMP_NUM_THREADS=1 python bench/plane_refresh.py [--seconds 4] [--rounds 2] [--hidden 8,8]
"""
from __future__ import annotations

import argparse
import statistics
import threading
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlplay.figures import plane as fp
from dlplay.plane.session import PlaneConfig, PlaneSession
from dlplay.server.admin import configure_threads

LEARNERS = 3


def config(hidden: tuple[int, ...]) -> PlaneConfig:
    return PlaneConfig(dataset="spiral", hidden=hidden, features=("x1", "x2"), activation="tanh", optimizer="sgd",
                       lr=0.03, batch_size=10, epochs=1_000_000)


_OVERLAYS: dict[str, object] = {}


def overlay(run: PlaneSession):
    """The run's points layer, drawn once per run (as the page keeps it)."""
    if run.run_id not in _OVERLAYS:
        d = run.data
        _OVERLAYS[run.run_id] = fp.points_overlay(d.x_train, d.y_train, d.x_test, d.y_test, regression=run.regression)
    return _OVERLAYS[run.run_id]


def live_pictures(run: PlaneSession) -> int:
    """What the page builds per redraw while the run trains; returns the bytes it would send."""
    grid = run.grid(50)
    snap = run.snapshot()
    tiles = fp.diagram_tiles(grid.inputs, grid.neurons, grid.output, run.regression)
    net = fp.data_uri(fp.network_jpeg(tiles, grid.weights, selected=(len(grid.neurons) + 1, 0)))
    plane = fp.data_uri(fp.plane_jpeg(fp.output_rgb(grid.output, run.regression), overlay(run)))
    neuron = fp.data_uri(fp.picture_jpeg(fp.class_prob_rgb(grid.output[0], 0)))
    loss = fp.data_uri(fp.loss_jpeg(snap.epochs, snap.train_loss, snap.test_loss))
    return len(net) + len(plane) + len(neuron) + len(loss)


def paused_figures(run: PlaneSession) -> int:
    """What the page builds when the run is paused (the Plotly figures, as Streamlit serialises them)."""
    import plotly.io

    grid, snap = run.grid(50), run.snapshot()
    data = run.data
    tiles = fp.diagram_tiles(grid.inputs, grid.neurons, grid.output, run.regression)
    labels = [[str(i) for i in range(len(col))] for col in tiles]
    figs = [fp.network_figure(tiles, labels, grid.weights),
            fp.plane_figure(fp.png_uri(fp.output_rgb(grid.output, False)), data.x_train, data.y_train, data.x_test,
                            data.y_test, "en"),
            fp.neuron_figure(fp.png_uri(fp.class_prob_rgb(grid.output[0], 0)), "", "en"),
            fp.loss_figure(snap.epochs, snap.train_loss, snap.test_loss, "en")]
    return sum(len(plotly.io.to_json(f.to_dict(), validate=False)) for f in figs)


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def train_sessions(hidden: tuple[int, ...], seconds: float, redraw_hz: float | None = None) -> tuple[float, list[float]]:
    """Three sessions at full speed for ``seconds``: their summed epochs/s, and (with ``redraw_hz``) the
    redraws per second each page thread achieved (as fast as it can when redraw_hz is 0)."""
    runs = [PlaneSession(config(hidden)) for _ in range(LEARNERS)]
    for r in runs:
        r.start()
    stop = threading.Event()
    counts = [0] * LEARNERS

    def page(i: int) -> None:
        period = 1 / redraw_hz if redraw_hz else 0.0
        nxt = time.perf_counter()
        while not stop.is_set():
            live_pictures(runs[i])
            counts[i] += 1
            if period:
                nxt += period
                delay = nxt - time.perf_counter()
                if delay > 0:
                    stop.wait(delay)

    pages = [threading.Thread(target=page, args=(i,)) for i in range(LEARNERS)] if redraw_hz is not None else []
    time.sleep(0.3)  # warm up
    start_epochs = sum(r.epoch for r in runs)
    t0 = time.perf_counter()
    for p in pages:
        p.start()
    time.sleep(seconds)
    stop.set()
    dt = time.perf_counter() - t0
    epochs = sum(r.epoch for r in runs) - start_epochs
    for p in pages:
        p.join()
    for r in runs:
        r.stop()
        r.join(10)
    return epochs / dt, [c / dt for c in counts]


def train_baseline(hidden: tuple[int, ...], seconds: float) -> float:
    """The plain PyTorch loop: the same network, data and mini-batches, three threads, no run machinery."""
    data = config(hidden).make_data()
    x = torch.as_tensor(data.x_train)
    y = torch.as_tensor(data.y_train)
    stop = threading.Event()
    epochs = [0] * LEARNERS

    def loop(i: int) -> None:
        torch.manual_seed(i)
        layers: list[nn.Module] = []
        width = 2
        for units in hidden:
            layers += [nn.Linear(width, units), nn.Tanh()]
            width = units
        model = nn.Sequential(*layers, nn.Linear(width, 2))
        opt = torch.optim.SGD(model.parameters(), lr=0.03)
        gen = torch.Generator().manual_seed(i)
        while not stop.is_set():
            order = torch.randperm(len(y), generator=gen)
            for first in range(0, len(y), 10):
                idx = order[first:first + 10]
                loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            with torch.no_grad():  # the same per-epoch measurement as the session's
                F.cross_entropy(model(x), y)
            epochs[i] += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(LEARNERS)]
    for th in threads:
        th.start()
    time.sleep(0.3)
    before, t0 = sum(epochs), time.perf_counter()
    time.sleep(seconds)
    done, dt = sum(epochs) - before, time.perf_counter() - t0
    stop.set()
    for th in threads:
        th.join()
    return done / dt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--hidden", default="8,8")
    args = parser.parse_args()
    configure_threads(1)  # as the server: one torch thread, a 1 ms GIL switch interval
    hidden = tuple(int(u) for u in args.hidden.split(","))
    print(f"network 2-{'-'.join(map(str, hidden))}-2, spiral, SGD batch 10, {LEARNERS} learners, torch threads 1")

    # 1-2. the grid and the pictures: first with nothing training, then while three runs train at full speed
    idle = PlaneSession(config(hidden))
    idle_ms = timed(lambda: live_pictures(idle), 30)
    print(f"live redraw, nothing training: median {statistics.median(idle_ms):6.2f} ms "
          f"(the machine's own speed; {1000 / statistics.median(idle_ms):.0f} redraws/s on one thread)")
    runs = [PlaneSession(config(hidden)) for _ in range(LEARNERS)]
    for r in runs:
        r.start()
    time.sleep(0.5)
    grid_ms = timed(lambda: runs[0].grid(50), 60)
    live_ms = timed(lambda: live_pictures(runs[0]), 30)
    paused_ms = timed(lambda: paused_figures(runs[0]), 15)
    live_bytes, paused_bytes = live_pictures(runs[0]), paused_figures(runs[0])
    for r in runs:
        r.stop()
        r.join(10)
    med = statistics.median
    print(f"grid(50) with every neuron:   median {med(grid_ms):6.2f} ms  (p90 {np.percentile(grid_ms, 90):.2f})")
    print(f"live redraw (grid + JPEGs):   median {med(live_ms):6.2f} ms  (p90 {np.percentile(live_ms, 90):.2f}), "
          f"{live_bytes / 1024:.0f} KiB sent")
    print(f"paused redraw (Plotly JSON):  median {med(paused_ms):6.2f} ms  (p90 {np.percentile(paused_ms, 90):.2f}), "
          f"{paused_bytes / 1024:.0f} KiB sent")
    print(f"  -> one page thread alone could redraw {1000 / med(live_ms):.0f} times/s while 3 runs train")

    # 3-4. interleaved rounds
    rows: dict[str, list[float]] = {"baseline": [], "sessions": [], "sessions+10Hz": [], "rate": [], "rate_min": []}
    for _ in range(args.rounds):
        rows["baseline"].append(train_baseline(hidden, args.seconds))
        rows["sessions"].append(train_sessions(hidden, args.seconds)[0])
        epochs, rates = train_sessions(hidden, args.seconds, redraw_hz=10.0)
        rows["sessions+10Hz"].append(epochs)
        epochs, rates = train_sessions(hidden, args.seconds, redraw_hz=0.0)
        rows["rate"].append(float(np.mean(rates)))
        rows["rate_min"].append(min(rates))
    base, sess, sess10 = (med(rows[k]) for k in ("baseline", "sessions", "sessions+10Hz"))
    print(f"training, 3 at once (epochs/s, summed): plain PyTorch {base:.0f}, PlaneSession {sess:.0f} "
          f"({sess / base:.2f}x), PlaneSession with 3 pages redrawing at 10 Hz {sess10:.0f} ({sess10 / base:.2f}x)")
    print(f"achievable refresh rate per learner, 3 learners training at full speed: {med(rows['rate']):.1f}/s "
          f"(slowest page {med(rows['rate_min']):.1f}/s; target 10/s)")


if __name__ == "__main__":
    main()

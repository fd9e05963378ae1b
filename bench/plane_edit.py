"""How fast does the 2-D playground's hand editor recompute after an edit (server side)?

A paused run of a 2-4-4-1 style network (features x₁ x₂, hidden 4-4, tanh) on the default 50×50 grid, for
a regression set (one output: literally 2-4-4-1) and the circle (two class outputs). Measured, one torch
thread (the server's setting), interleaved round by round:

1. baseline: ``PlaneSession.grid(50)``, the live view's own read of the network over the plane;
2. the edit: ``PlaneEditor.set`` (write one weight) + the recompute (grid, train/test loss and accuracy,
   the neuron's z and a at one point) — the core's share of an edit;
3. the page's pictures from the edited grid, as the page builds them while editing (plain JPEG images of the
   network diagram, the plane with its points, the enlarged neuron);
4. for comparison, the same three as the paused page's Plotly figures (serialised to JSON as Streamlit
   sends them), which the page uses when the learner is not editing.

Streamlit's own share of the fragment rerun (widgets, protobuf, websocket) and the browser's drawing are
not in these numbers; the browser test (tests/test_e2e_plane_edit.py) prints the time from an edit to
the redrawn picture in a real Chromium.

    OMP_NUM_THREADS=1 python bench/plane_edit.py [--rounds 200]
"""
from __future__ import annotations

import argparse
import statistics
import time

import plotly.io
import torch

from dlplay.figures import plane as fp
from dlplay.plane.edit import PlaneEditor
from dlplay.plane.session import PlaneConfig, PlaneSession
from dlplay.server.admin import configure_threads


def pictures(run: PlaneSession, editor: PlaneEditor, overlay: object) -> int:
    """The page's pictures of the edited network while editing (bytes of the data URIs it sends)."""
    grid = editor.view(0, 1).grid
    tiles = fp.diagram_tiles(grid.inputs, grid.neurons, grid.output, run.regression)
    out = [fp.data_uri(fp.network_jpeg(tiles, grid.weights, selected=(1, 1))),
           fp.data_uri(fp.plane_jpeg(fp.output_rgb(grid.output, run.regression), overlay)),
           fp.data_uri(fp.picture_jpeg(fp.diverging_rgb(grid.neurons[0][1])))]
    return sum(map(len, out))


def figures(run: PlaneSession, editor: PlaneEditor) -> int:
    """The paused page's pictures of the edited network (bytes of JSON it would send)."""
    view = editor.view(0, 1)
    grid, data = view.grid, run.data
    tiles = fp.diagram_tiles(grid.inputs, grid.neurons, grid.output, run.regression)
    labels = [[str(i) for i in range(len(col))] for col in tiles]
    figs = [fp.network_figure(tiles, labels, grid.weights, selected=(1, 1)),
            fp.plane_figure(fp.png_uri(fp.output_rgb(grid.output, run.regression)), data.x_train, data.y_train,
                            data.x_test, data.y_test, "en", regression=run.regression),
            fp.neuron_figure(fp.png_uri(fp.diverging_rgb(grid.neurons[0][1])), "", "en")]
    return sum(len(plotly.io.to_json(f.to_dict(), validate=False)) for f in figs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    configure_threads(1)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, rounds {args.rounds}, grid 50×50")
    for dataset in ("reg_plane", "circle"):
        run = PlaneSession(PlaneConfig(dataset=dataset, hidden=(4, 4), activation="tanh", epochs=10))
        editor = PlaneEditor(run)
        d = run.data
        overlay = fp.points_overlay(d.x_train, d.y_train, d.x_test, d.y_test, regression=run.regression)
        times: dict[str, list[float]] = {"baseline grid(50)": [], "edit + recompute": [], "page images": [],
                                         "(Plotly figures)": []}
        value = editor.value(0, 1, 0)
        for i in range(args.rounds):  # interleaved: each round times all three
            t = time.perf_counter()
            run.grid(50)
            times["baseline grid(50)"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            editor.set(0, 1, 0, value + 0.01 * (i % 50 + 1))
            times["edit + recompute"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            sent = pictures(run, editor, overlay)
            times["page images"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            sent_plotly = figures(run, editor)
            times["(Plotly figures)"].append((time.perf_counter() - t) * 1000)
        outputs = run.data.outputs
        print(f"\n{dataset}: network 2-4-4-{outputs}, {len(run.data.y_train)} training + {len(run.data.y_test)} test points")
        base = statistics.median(times["baseline grid(50)"])
        for name, values in times.items():
            med = statistics.median(values)
            p90 = sorted(values)[int(0.9 * len(values))]
            print(f"  {name:20s} median {med:7.2f} ms   p90 {p90:7.2f} ms   ×{med / base:5.1f} of the baseline")
        total = statistics.median(times["edit + recompute"]) + statistics.median(times["page images"])
        print(f"  edit → pictures ready (server, medians summed): {total:.1f} ms; images {sent / 1024:.0f} KiB"
              f" (Plotly JSON {sent_plotly / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()

"""A plane to click points onto, each of the chosen class (Streamlit v2 component, inline JavaScript).

The 2-D playground's "drawn" data set: a click puts a point of the current class at that place of the
plane [-extent, extent]²; Undo takes the last one back, Clear removes all. The points go back to the
app at once, as rows (x, y, class). Like dlplay/ui/canvas_widget.py, no build step and no iframe.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

HTML = """
<div class="dpp-wrap">
  <div class="dpp-toolbar">
    <span class="dpp-current"></span>
    <button type="button" data-act="undo" disabled>Undo</button>
    <button type="button" data-act="clear" disabled>Clear</button>
  </div>
  <canvas class="dpp-canvas" width="320" height="320"></canvas>
</div>
"""

CSS = """
.dpp-wrap { display: inline-flex; flex-direction: column; gap: 6px; }
.dpp-toolbar { display: flex; gap: 6px; align-items: center; }
.dpp-current { font-size: 0.85rem; margin-right: 6px; }
.dpp-toolbar button {
  font: inherit; font-size: 0.85rem; line-height: 1.4; padding: 3px 12px; border-radius: 8px; cursor: pointer;
  color: var(--st-text-color, #31333f); background: var(--st-background-color, #fff);
  border: 1px solid rgba(128, 128, 128, 0.35);
}
.dpp-toolbar button:disabled { opacity: 0.45; cursor: default; }
.dpp-canvas { display: block; border-radius: 6px; border: 1px solid rgba(128,128,128,0.35); cursor: crosshair;
  touch-action: none; }
"""

JS = """
const STATES = new WeakMap();

function mount(root) {
  const canvas = root.querySelector("canvas");
  const ctx = canvas.getContext("2d");
  const undoBtn = root.querySelector("[data-act=undo]");
  const clearBtn = root.querySelector("[data-act=clear]");
  const current = root.querySelector(".dpp-current");
  const s = { points: [], data: {}, setStateValue: null, loaded: null };

  const ext = () => s.data.extent || 6;
  const toPlane = (e) => {
    const r = canvas.getBoundingClientRect();
    const u = (e.clientX - r.left) / r.width, v = (e.clientY - r.top) / r.height;
    return [Math.round(((2 * u - 1) * ext()) * 100) / 100, Math.round(((1 - 2 * v) * ext()) * 100) / 100];
  };
  const toPx = (p) => [(p[0] / ext() + 1) / 2 * canvas.width, (1 - p[1] / ext()) / 2 * canvas.height];
  const colour = (k) => (s.data.colours || ["#1f77b4"])[k % (s.data.colours || ["#1f77b4"]).length];
  const draw = () => {
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.strokeStyle = "#e9e9ef";
    ctx.lineWidth = 1;
    for (let g = -ext(); g <= ext(); g += 2) {
      const [x, y] = toPx([g, g]);
      ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, canvas.height); ctx.stroke();
      ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(canvas.width, y); ctx.stroke();
    }
    for (const p of s.points) {
      const [x, y] = toPx(p);
      ctx.beginPath(); ctx.arc(x, y, 5, 0, 2 * Math.PI);
      ctx.fillStyle = colour(p[2]); ctx.fill();
      ctx.strokeStyle = "#ffffff"; ctx.lineWidth = 1; ctx.stroke();
    }
    undoBtn.disabled = clearBtn.disabled = s.points.length === 0;
    const k = s.data.current || 0;
    current.innerHTML = "";
    const dot = document.createElement("span");
    dot.textContent = "\\u25CF ";
    dot.style.color = colour(k);
    current.appendChild(dot);
    current.appendChild(document.createTextNode(s.data.current_label || ""));
  };
  const send = () => { if (s.setStateValue) s.setStateValue("points", s.points.slice()); draw(); };

  canvas.addEventListener("pointerdown", (e) => {
    if (e.pointerType === "mouse" && e.button !== 0) return;
    e.preventDefault();
    if (s.points.length >= (s.data.max_points || 1000)) return;
    const p = toPlane(e);
    s.points.push([p[0], p[1], s.data.current || 0]);
    send();
  });
  undoBtn.addEventListener("click", () => { s.points.pop(); send(); });
  clearBtn.addEventListener("click", () => { s.points = []; send(); });

  s.update = (data) => {
    s.data = data;
    const size = data.size || 320;
    if (canvas.width !== size) { canvas.width = size; canvas.height = size; }
    canvas.style.width = size + "px";
    canvas.style.height = size + "px";
    if (s.loaded !== data.generation) {  // the app replaced the points (first draw, a preset, a reset)
      s.loaded = data.generation;
      s.points = (data.points || []).map((p) => [p[0], p[1], p[2]]);
    }
    undoBtn.textContent = data.undo || "Undo";
    clearBtn.textContent = data.clear || "Clear";
    canvas.setAttribute("aria-label", data.label || "plane");
    draw();
  };
  return s;
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  let s = STATES.get(parentElement);
  if (!s) {
    s = mount(parentElement);
    STATES.set(parentElement, s);
  }
  s.setStateValue = setStateValue;
  s.update(data || {});
  return () => { STATES.delete(parentElement); };
}
"""

_COMPONENT = st.components.v2.component("dlplay_point_pad", html=HTML, css=CSS, js=JS)


def point_pad(key: str, points: list, *, current: int, colours: list[str], generation: int = 0, extent: float = 6.0,
              size: int = 320, max_points: int = 1000, undo: str = "Undo", clear: str = "Clear",
              current_label: str = "", label: str = "") -> list[tuple[float, float, int]] | None:
    """Show the plane; return the points clicked so far as (x, y, class) rows (None before the first click).

    ``points`` seed the pad when ``generation`` changes (the app's own edits); after that the pad keeps
    the learner's clicks and returns them, the app rerunning (only the enclosing fragment) on each click.
    """
    data: dict[str, Any] = dict(points=[list(p) for p in points], current=current, colours=colours,
                                generation=generation, extent=extent, size=size, max_points=max_points, undo=undo,
                                clear=clear, current_label=current_label, label=label)
    result = _COMPONENT(data=data, key=key, default={"points": None}, on_points_change=lambda: None,
                        width="content", height="content")
    raw = result.get("points") if result is not None else None
    if not isinstance(raw, list):
        return None
    rows: list[tuple[float, float, int]] = []
    for p in raw:
        try:
            x, y, k = float(p[0]), float(p[1]), int(p[2])
        except (TypeError, ValueError, IndexError):
            continue
        if abs(x) <= extent and abs(y) <= extent and 0 <= k < len(colours):
            rows.append((x, y, k))
    return rows[:max_points]

"""A small drawing canvas (Streamlit v2 component, inline JavaScript, no build step).

Why not streamlit-drawable-canvas: it works with Streamlit 1.67, but its frontend debounces every
stroke by a fixed 200 ms (``Bc = 200`` in its bundle) before sending it, which alone takes most of
the Draw page's 300 ms budget from stroke end to guess. This canvas sends the moment the pen lifts.
It draws white strokes on black (MNIST's look), with Undo and Clear, mouse, pen and touch input.
"""
from __future__ import annotations

import base64
import binascii
import io
from typing import Any

import numpy as np
import streamlit as st
from PIL import Image

HTML = """
<div class="dlc-wrap">
  <div class="dlc-toolbar">
    <button type="button" data-act="undo" disabled>Undo</button>
    <button type="button" data-act="clear" disabled>Clear</button>
  </div>
  <canvas class="dlc-canvas" width="280" height="280"></canvas>
</div>
"""

CSS = """
.dlc-wrap { display: inline-flex; flex-direction: column; gap: 6px; }
.dlc-toolbar { display: flex; gap: 6px; }
.dlc-toolbar button {
  font: inherit; font-size: 0.85rem; line-height: 1.4; padding: 3px 12px; border-radius: 8px; cursor: pointer;
  color: var(--st-text-color, #31333f); background: var(--st-background-color, #fff);
  border: 1px solid rgba(128, 128, 128, 0.35);
}
.dlc-toolbar button:hover:not(:disabled) { border-color: var(--st-primary-color, #ff4b4b); color: var(--st-primary-color, #ff4b4b); }
.dlc-toolbar button:disabled { opacity: 0.45; cursor: default; }
.dlc-canvas { display: block; border-radius: 8px; touch-action: none; cursor: crosshair; }
"""

JS = """
const STATES = new WeakMap();

function mount(root) {
  const canvas = root.querySelector("canvas");
  const ctx = canvas.getContext("2d");
  const undoBtn = root.querySelector("[data-act=undo]");
  const clearBtn = root.querySelector("[data-act=clear]");
  const s = { strokes: [], current: null, base: null, data: {}, setStateValue: null, version: 0 };

  const pos = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height];
  };
  const pen = () => {
    ctx.strokeStyle = s.data.ink || "#ffffff";
    ctx.fillStyle = s.data.ink || "#ffffff";
    ctx.lineWidth = s.data.stroke || 18;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
  };
  const dot = (p) => { pen(); ctx.beginPath(); ctx.arc(p[0], p[1], ctx.lineWidth / 2, 0, 2 * Math.PI); ctx.fill(); };
  const drawStroke = (pts) => {
    if (pts.length === 1) { dot(pts[0]); return; }
    pen(); ctx.beginPath(); ctx.moveTo(pts[0][0], pts[0][1]);
    for (let i = 1; i < pts.length; i++) ctx.lineTo(pts[i][0], pts[i][1]);
    ctx.stroke();
  };
  const redraw = () => {
    ctx.fillStyle = s.data.background || "#000000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    for (const pts of s.strokes) drawStroke(pts);
  };
  const buttons = () => { undoBtn.disabled = clearBtn.disabled = s.strokes.length === 0; };
  const send = () => {
    s.version += 1;
    const png = s.strokes.length ? canvas.toDataURL("image/png") : null;
    if (s.setStateValue) s.setStateValue("drawing", { png, strokes: s.strokes.length, version: s.version });
    buttons();
  };

  canvas.addEventListener("pointerdown", (e) => {
    if (e.pointerType === "mouse" && e.button !== 0) return;
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    s.base = ctx.getImageData(0, 0, canvas.width, canvas.height);  // the finished strokes
    s.current = [pos(e)];
    dot(s.current[0]);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!s.current) return;
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
    for (const ev of (events.length ? events : [e])) s.current.push(pos(ev));
    // the stroke so far as one path (even joins), over the finished strokes
    ctx.putImageData(s.base, 0, 0);
    drawStroke(s.current);
  });
  const finish = () => {
    if (!s.current) return;
    s.strokes.push(s.current);
    s.current = null;
    s.base = null;
    send();  // at once: no debounce between the pen lifting and the app hearing of it
  };
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", finish);
  undoBtn.addEventListener("click", () => { s.strokes.pop(); redraw(); send(); });
  clearBtn.addEventListener("click", () => { s.strokes = []; redraw(); send(); });

  s.update = (data) => {
    const size = data.size || 280;
    const resized = canvas.width !== size;
    if (resized) { canvas.width = size; canvas.height = size; }
    canvas.style.width = size + "px";
    canvas.style.height = size + "px";
    const restyled = s.data.background !== data.background || s.data.ink !== data.ink || s.data.stroke !== data.stroke;
    s.data = data;
    undoBtn.textContent = data.undo || "Undo";
    clearBtn.textContent = data.clear || "Clear";
    canvas.setAttribute("aria-label", data.label || "drawing canvas");
    if (resized || restyled) redraw();
    buttons();
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

_COMPONENT = st.components.v2.component("dlplay_draw_canvas", html=HTML, css=CSS, js=JS)


def decode_png_data_url(url: str | None) -> np.ndarray | None:
    """``data:image/png;base64,...`` -> RGBA uint8 array (None for no drawing or undecodable data)."""
    if not url or ";base64," not in url:
        return None
    try:
        raw = base64.b64decode(url.split(";base64,", 1)[1], validate=True)
        with Image.open(io.BytesIO(raw)) as image:
            return np.asarray(image.convert("RGBA"))
    except (binascii.Error, OSError, ValueError):
        return None


def draw_canvas(key: str, *, size: int = 280, stroke: int = 18, undo: str = "Undo", clear: str = "Clear",
                label: str = "", ink: str = "#ffffff", background: str = "#000000") -> str | None:
    """Show the canvas; return what is drawn as a PNG data URL (None while it is empty).

    The app reruns (only the enclosing fragment, if any) as soon as a stroke ends, on Undo and on
    Clear. ``decode_png_data_url`` turns the result into an RGBA array.
    """
    data: dict[str, Any] = dict(size=size, stroke=stroke, undo=undo, clear=clear, label=label, ink=ink,
                                background=background)
    result = _COMPONENT(data=data, key=key, default={"drawing": None}, on_drawing_change=lambda: None,
                        width="content", height="content")
    drawing = result.get("drawing") if result is not None else None
    if not isinstance(drawing, dict):
        return None
    png = drawing.get("png")
    return png if isinstance(png, str) else None

"""Accessibility in one place: the app-wide CSS (text contrast, a visible keyboard focus) and a polite
live region that screen readers announce (training progress, once per epoch)."""
from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

import streamlit as st

# Streamlit's captions are drawn at 60 % opacity, ~3.5:1 on white (WCAG 2.1 AA asks 4.5:1 for text): opaque
# #55575f is 7.2:1 on white and still reads as secondary. A visible outline for the keyboard focus; a radio's or a
# checkbox's input is hidden (1 px, clipped): its label shows it.
CSS = """<style>
[data-testid=stCaptionContainer], [data-testid=stCaptionContainer] p,
[data-testid=stWidgetLabel] [data-testid=stCaptionContainer], [data-testid=stMetricDelta] ~ div,
[data-testid=stTooltipHoverTarget] svg, [data-testid=stTableStyledEmptyTableCell],
[data-testid=stFileUploaderDropzoneInstructions] span, [data-testid=stFileUploaderDropzoneInstructions] small {
  color: #55575f !important;
  opacity: 1 !important;
}
:focus-visible, [data-testid=stBaseButton-secondary]:focus-visible, [data-testid^=stBaseButton]:focus-visible,
[role=tab]:focus-visible, [role=slider]:focus-visible, canvas:focus-visible, summary:focus-visible {
  outline: 3px solid #0b57d0 !important;
  outline-offset: 2px;
}
label:has(input[type=radio]:focus-visible), label:has(input[type=checkbox]:focus-visible) {
  outline: 3px solid #0b57d0 !important;
  outline-offset: 2px;
  border-radius: 4px;
}
.dl-data-table {max-height: 260px; overflow: auto; margin-bottom: 0.5rem;}
.dl-data-table table {border-collapse: collapse; font-size: 0.85rem;}
.dl-data-table caption {text-align: left; font-weight: 600; padding: 2px 0;}
.dl-data-table th, .dl-data-table td {border: 1px solid #d0d0d5; padding: 2px 8px; text-align: right;}
</style>"""


# The same rules, kept in the document's <head> by the script below. Streamlit sends a style-only st.html to its
# "event" container, which a rerun empties until the script reaches page_styles() again: for that moment every
# caption was drawn faint again (axe, under load: color-contrast on Train's and Generate's captions). In <head>
# they stay for the tab's life.
CSS_RULES = CSS.removeprefix("<style>").removesuffix("</style>")

# A formula wider than its column scrolls sideways: a keyboard user must be able to focus it to scroll it
# (axe: scrollable-region-focusable). Only the ones that overflow become tab stops. Checked again when the page
# changes, when the window or a formula changes size (KaTeX's fonts arrive after the formula is drawn and widen
# it, with no change to the page's elements: before, such a formula stayed out of the tab order), and when the
# fonts have loaded. Set up once per tab.
SCRIPT = """<script>
if (!document.getElementById('dlplay-a11y-css')) {
  const style = document.createElement('style');
  style.id = 'dlplay-a11y-css';
  style.textContent = __CSS_RULES__;
  document.head.appendChild(style);
}
if (!window.dlplayA11y) {
  window.dlplayA11y = true;
  let queued = false;
  const watched = new WeakSet();
  const resized = new ResizeObserver(() => later());
  const fix = () => {
    queued = false;
    for (const el of document.querySelectorAll('.katex-display')) {
      if (!watched.has(el)) {
        watched.add(el);
        resized.observe(el);
        const inner = el.querySelector('.katex');
        if (inner) resized.observe(inner);
      }
      const scrolls = el.scrollWidth > el.clientWidth + 1;
      if (scrolls && !el.hasAttribute('tabindex')) { el.tabIndex = 0; el.setAttribute('role', 'region');
        el.setAttribute('aria-label', el.querySelector('annotation')?.textContent || 'formula'); }
      else if (!scrolls && el.getAttribute('tabindex') === '0') { el.removeAttribute('tabindex'); el.removeAttribute('role'); }
    }
  };
  // a timer, not requestAnimationFrame: a tab in the background gets no animation frames
  const later = () => { if (!queued) { queued = true; setTimeout(fix, 0); } };
  new MutationObserver(later).observe(document.body, {childList: true, subtree: true});
  window.addEventListener('resize', later);
  if (document.fonts) { document.fonts.addEventListener('loadingdone', later); document.fonts.ready.then(later); }
  later();
}
</script>""".replace("__CSS_RULES__", json.dumps(CSS_RULES))


def page_styles() -> None:
    """The app-wide accessibility CSS and script; call once per script run (app.py)."""
    with st.sidebar:  # style- and script-only: nothing to see, and the page's own elements keep their places
        st.html(CSS)
        st.html(SCRIPT, unsafe_allow_javascript=True)


def live_region_html(text: str, key: str = "progress") -> str:
    """A visually hidden region that screen readers read out politely whenever its text changes."""
    return (f'<div class="dl-live dl-live-{html.escape(key)}" role="status" aria-live="polite" aria-atomic="true" '
            'style="position:absolute;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;'
            f'clip:rect(0,0,0,0);white-space:nowrap;border:0">{html.escape(text)}</div>')


def announce(text: str, key: str = "progress") -> None:
    """Announce ``text`` to screen readers, politely (call with a text that changes rarely, e.g. per epoch:
    the region is read each time its text changes)."""
    st.html(live_region_html(text, key))


def training_announcement(status: str, epochs_done: Sequence[Any], epochs: int) -> str:
    """What the Train page announces: the run's status and, once an epoch is done, its test results. It changes
    once per epoch or status change (never per step), so a screen reader is not flooded while it trains."""
    from dlplay.ui.i18n import t

    text = t("a11y.train_status", status=t(f"train.status_{status}"))
    if epochs_done:
        last = epochs_done[-1]
        text += " " + t("a11y.train_epoch", epoch=len(epochs_done), epochs=epochs, acc=f"{last.test_acc:.2%}",
                        loss=f"{last.test_loss:.4f}")
    return text

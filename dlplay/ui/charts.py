"""Every chart with its text alternative: ``chart(container, fig, ...)`` draws ``container.plotly_chart(fig, ...)``
and, right under it, a collapsed "Data: <title>" expander with the figure's data as tables (screen readers,
keyboard users and anyone who wants the numbers)."""
from __future__ import annotations

import html
from typing import Any

import streamlit as st

from dlplay.figures.table import WORDS, figure_tables, figure_title
from dlplay.ui.i18n import t


def chart(container: Any, fig: Any, **kwargs: Any) -> Any:
    """``container.plotly_chart(fig, **kwargs)`` (``container``: ``st``, a column, …) followed by the figure's data
    one click away. Returns what ``plotly_chart`` returns (the selection event where ``on_select`` is set)."""
    result = container.plotly_chart(fig, **kwargs)
    data_table(container, fig)
    return result


def table_html(name: str, columns: dict[str, list]) -> str:
    """One trace's values as a plain HTML table (a real <table>: screen readers move through its cells)."""
    head = "".join(f"<th scope=col>{html.escape(str(c))}</th>" for c in columns)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in zip(*columns.values()))
    label = html.escape(name, quote=True)  # it scrolls when long: a keyboard user can focus it to scroll
    return (f'<div class="dl-data-table" tabindex="0" role="region" aria-label="{label}"><table><caption>{html.escape(name)}</caption><thead><tr>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table></div>")


def data_table(container: Any, fig: Any) -> None:
    """A collapsed expander "Data: <title>" with one table per trace of ``fig``."""
    words = {key: t(f"a11y.table_{key}") for key in WORDS}
    tables = figure_tables(fig, words)
    if not tables:
        return
    title = figure_title(fig) or t("a11y.chart")
    # no key: a plain container (a keyed expander is a widget, and the language switch rewrites widgets);
    # HTML tables, not st.dataframe: real table markup, and no widget-like element in the page's lists
    with container.expander(t("a11y.chart_data", title=title), expanded=False):
        st.html("".join(table_html(name, columns) for name, columns in tables))

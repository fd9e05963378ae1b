"""Every chart with its text alternative: ``chart(container, fig, ...)`` draws ``container.plotly_chart(fig, ...)``
and, right under it, a collapsed "Data: <title>" expander with the figure's data as tables (screen readers,
keyboard users and anyone who wants the numbers)."""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dlplay.figures.table import figure_tables, figure_title
from dlplay.ui.i18n import t


def chart(container: Any, fig: Any, **kwargs: Any) -> Any:
    """``container.plotly_chart(fig, **kwargs)`` (``container``: ``st``, a column, …) followed by the figure's data
    one click away. Returns what ``plotly_chart`` returns (the selection event where ``on_select`` is set)."""
    result = container.plotly_chart(fig, **kwargs)
    data_table(container, fig)
    return result


def data_table(container: Any, fig: Any) -> None:
    """A collapsed expander "Data: <title>" with one table per trace of ``fig``."""
    tables = figure_tables(fig)
    if not tables:
        return
    title = figure_title(fig) or t("a11y.chart")
    # no key: a plain container (a keyed expander is a widget, and the language switch rewrites widgets)
    with container.expander(t("a11y.chart_data", title=title), expanded=False):
        for name, columns in tables:
            if len(tables) > 1:
                st.caption(name)
            rows = len(next(iter(columns.values())))
            st.dataframe(pd.DataFrame(columns), hide_index=True, height=min(35 * (rows + 1) + 3, 250))

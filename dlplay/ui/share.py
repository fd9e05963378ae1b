"""Share a configuration as a link: read it from the URL once per browser session, and make one."""
from __future__ import annotations

import streamlit as st

from dlplay.classify.runs import architecture_label
from dlplay.classify.split import check_edits
from dlplay.data import datasets as data
from dlplay.errors import UserError
from dlplay.nn.spec import ModelSpec, TrainConfig
from dlplay.server.guardrails import check_run
from dlplay.server.share import KEYS, LinkProblem, all_values, has_config, read_link, share_url
from dlplay.ui import server
from dlplay.ui.data import dataset_on
from dlplay.ui.i18n import LANG_KEY, error_text, t
from dlplay.ui.state import get_spec, set_config, set_spec

APPLIED = "share_link_applied"
REPORT = "share_link_report"  # what opening the link found: (level, key, params), shown until dismissed
SHARE_PAGE = "build"  # where a shared link lands


def check_on_server(spec: ModelSpec, config: TrainConfig) -> None:
    """What a link's values must fit beyond their own ranges: this server's limits and, for label edits,
    the training set's size (when the dataset is on this machine; else Start says where to put it)."""
    check_run(spec, config, server.limits())
    if config.label_edits and data.locate(config.dataset) is not None:
        check_edits(config, len(dataset_on(config.dataset, "cpu").train_labels), spec.num_classes)


def _used(problem: LinkProblem, spec: ModelSpec, config: TrainConfig) -> str:
    """What the page uses instead of a value it left out, in the link's own notation."""
    if problem.key == "net":
        return architecture_label(spec)
    return all_values(spec, config).get(problem.key) or t("share.used_default")


def _problem_line(problem: LinkProblem, parsed: tuple[ModelSpec, TrainConfig] | None) -> str:
    if parsed is None:
        return t("share.problem_unused", param=problem.label, value=problem.value, reason=error_text(problem.error))
    return t("share.problem", param=problem.label, value=problem.value, reason=error_text(problem.error),
             used=_used(problem, *parsed))


def show_report() -> None:
    """The persistent note on what a shared link changed or could not use, with a button to close it."""
    report = st.session_state.get(REPORT)
    if not report:
        return
    level, text = report
    with st.container(key="share_report"):
        getattr(st, level)(text, icon=":material/link_off:" if level != "success" else ":material/link:")
        st.button(t("share.dismiss"), key="share_report_dismiss", on_click=lambda: st.session_state.pop(REPORT, None),
                  icon=":material/close:")


def apply_query_params_once() -> None:
    """On a browser session's first run: if the URL carries a configuration, make it the current one.

    Call it from app.py after init_state() and before the page runs. The configuration's keys are
    then removed from the URL (so later edits are not contradicted by a stale address). Every value is
    checked now: one that is malformed or out of range is left out (the default is used) and a note
    that stays until closed names it, why, and what is used instead; a link that cannot be read at all
    changes nothing and says so, also in a note that stays.
    """
    if st.session_state.get(APPLIED):
        show_report()
        return
    st.session_state[APPLIED] = True
    params = st.query_params.to_dict()
    if not has_config(params):
        return
    try:
        parsed, problems = read_link(params, current=get_spec(), check=check_on_server)
    except UserError as exc:
        st.session_state[REPORT] = ("error", t("eval.share_rejected", reason=error_text(exc)))
        parsed, problems = None, []
    for key in KEYS:
        if key in st.query_params:
            del st.query_params[key]
    # every value is checked when the link opens, not at Start: each one left out is named, with what is used
    lines = "\n".join(f"- {_problem_line(p, parsed)}" for p in problems)
    if parsed is None and problems:
        st.session_state[REPORT] = ("error", t("share.none_used") + "\n\n" + lines)
    if parsed is not None:
        spec, config = parsed
        set_spec(spec)
        set_config(config)
        if problems:
            st.session_state[REPORT] = ("warning", t("share.partly", arch=architecture_label(spec), n=len(problems))
                                        + "\n\n" + lines)
        else:
            st.toast(t("eval.share_loaded", arch=architecture_label(spec)), icon=":material/link:")
    show_report()


def _base_url() -> str:
    url = getattr(st.context, "url", None) or "http://localhost:8501/"
    base = url.split("?", 1)[0].split("#", 1)[0]
    root = base[: base.index("/", base.index("//") + 2) + 1] if base.count("/") >= 3 else base.rstrip("/") + "/"
    return root + SHARE_PAGE


def share_link(spec: ModelSpec, config: TrainConfig) -> str:
    """The full link for ``spec`` and ``config`` on this server (with the current language)."""
    lang = st.session_state.get(LANG_KEY)
    return share_url(_base_url(), spec, config, {"lang": lang} if lang else None)


def share_link_button(spec: ModelSpec, config: TrainConfig, key: str = "share_link", label: str | None = None,
                      help: str | None = None) -> str:
    """A popover button (``label``: default "Share link") that shows the link, with a copy button, for
    ``spec`` and ``config``."""
    url = share_link(spec, config)
    with st.popover(label or t("eval.share_button"), icon=":material/share:", key=key, help=help):
        st.caption(t("eval.share_copy"))
        st.code(url, language=None, wrap_lines=True)
    return url

"""The Ray backend on the pages: the notice every page shows when the cluster could not be reached or
its head was lost (runs then train in this process), and the Admin page's view of the workers: where
runs train and each worker's runs, node, device and memory (nothing is shown when runs train here)."""
from __future__ import annotations

import os
import socket
import time

import streamlit as st

from dlplay.cluster import link_from_env, ray_address
from dlplay.server.guardrails import MB
from dlplay.ui import server
from dlplay.ui.i18n import t


def _mb(value: int | None) -> str:
    return "–" if value is None else f"{value / MB:,.0f}"


def show_workers() -> None:
    """A caption (the Ray address, this app process) and a table of the worker actors."""
    backend = server.run_backend()
    if backend is None:
        return
    rows = backend.workers()
    st.subheader(t("cluster.workers"))
    st.caption(t("cluster.backend", workers=len(rows), address=ray_address(), pid=os.getpid(),
                 host=socket.gethostname()))
    st.dataframe([{
        t("cluster.col_worker"): row.name,
        t("cluster.col_state"): t("cluster.state_ok") if row.info else t("cluster.state_missing"),
        t("cluster.col_node"): f"{row.info.hostname} ({row.info.node})" if row.info else "–",
        t("cluster.col_pid"): row.info.pid if row.info else None,
        t("cluster.col_device"): row.info.device if row.info else "–",
        t("cluster.col_active"): row.info.runs_active if row.info else None,
        t("cluster.col_runs"): row.info.runs_total if row.info else None,
        t("cluster.col_threads"): row.info.train_threads if row.info else None,
        t("cluster.col_memory"): _mb(row.info.rss_bytes) if row.info else "–",
        t("cluster.col_device_memory"): _mb(row.info.device_allocated) if row.info else "–",
    } for row in rows], hide_index=True, key="admin_workers_table")


def cluster_notice() -> None:
    """With ``DLPLAY_RAY_ADDRESS`` set: a warning when runs cannot train on the cluster (the connection
    failed, or the head stopped answering) and train in this process instead. Waits for the first
    connection."""
    link = link_from_env()
    if link is None or link.backend() is not None:
        return
    from dlplay.cluster.link import LOST

    with st.container(key="cluster_notice"):
        if link.state == LOST:
            st.warning(t("cluster.notice_lost", address=link.gcs_address or link.address,
                         time=time.strftime("%H:%M:%S", time.localtime(link.since))), icon=":material/cloud_off:")
        else:
            st.warning(t("cluster.notice_failed", address=link.address, error=(link.error or "")[:400]),
                       icon=":material/cloud_off:")

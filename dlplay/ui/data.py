"""Datasets loaded once per process and moved to the device once (shared by all sessions)."""
from __future__ import annotations

import streamlit as st
import torch

from dlplay import data


@st.cache_resource(show_spinner=False, max_entries=4)
def dataset_on(name: str, device: str) -> "data.Dataset":
    """The dataset ``name`` as uint8 tensors on ``device``; raises UserError when it cannot be found."""
    return data.load_dataset(name).to(torch.device(device))

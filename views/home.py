"""Home: what dlplay is, the device in use, and whether the datasets are on this machine."""
import os
from pathlib import Path

import streamlit as st

from dlplay.data.datasets import DATASETS, check_dataset
from dlplay.errors import UserError
from dlplay.run.device import choose_device, describe_device
from dlplay.ui.i18n import error_text, t
from dlplay.ui.nav import available_pages
from dlplay.ui.state import init_state

PATH_PARAMS = ("file", "images", "labels", "path", "where")


def without_folders(problem: UserError) -> UserError:
    """The same problem with its file paths cut to the file names."""
    params = {k: Path(v).name if k in PATH_PARAMS and isinstance(v, (str, os.PathLike)) else v
              for k, v in problem.params.items()}
    return UserError(problem.key, **params)


init_state()
st.title(t("home.title"))
st.markdown(t("home.intro"))

left, right = st.columns(2)
with left:
    st.subheader(t("home.device"))
    info = describe_device(choose_device("auto"))
    if info.kind == "cuda":
        st.success(t("home.device_cuda", name=info.name, memory=f"{info.memory_gb:.1f}"))
    else:
        name = t("home.cpu_name", cores=os.cpu_count() or 1) if info.kind == "cpu" else info.name
        st.info(t("home.device_cpu", name=name, threads=info.threads))
with right:
    st.subheader(t("home.datasets"))
    # whether each dataset is there, not where: the server's folders are no business of a learner's
    # (the Train page's box names the folder when training needs the files)
    for name, ds in DATASETS.items():
        check = check_dataset(name)  # validated as training reads it (cached per file mtime and size)
        if not check.found:
            st.warning(t("home.dataset_missing", name=ds.title))
        elif check.problem is None:  # found and it loads: check.usable
            st.success(t("home.dataset_found", name=ds.title))
        else:
            st.error(t("home.dataset_broken", name=ds.title, reason=error_text(without_folders(check.problem))))

st.subheader(t("home.pages"))
for path, url, key, icon in available_pages():
    if url in ("home", "admin"):
        continue
    st.page_link(path, label=t(key), icon=icon)
    st.caption(t(f"home.about_{url}"))

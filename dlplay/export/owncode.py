"""A run on a learner's own dataset as a zip: the code and the dataset's files, ready to run.

The scripts of :mod:`dlplay.export.script` and :mod:`dlplay.export.keras` (and the notebook) read a built-in
dataset where dlplay finds it; a learner's own dataset (dlplay/owndata.py) exists only in the session, so its
code travels with its files::

    dlplay_run/
        dlplay_run.py  dlplay_run.ipynb  dlplay_run_keras.py  README.txt
        data/train.npz  data/test.npz     images uint8 [N, 28, 28] and labels int64 [N] (the app's own split)
        data/classes.json                 the class names (label i is classes[i])

The .npz files hold plain numpy arrays (``np.load(..., allow_pickle=False)`` reads them) taken from the
dataset's file in the session's data folder, so the script trains on exactly the images, labels and
train/test split the app trained on, normalised with the same mean and standard deviation.
"""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np

from dlplay.data.datasets import OWN
from dlplay.errors import UserError
from dlplay.export.keras import keras_script
from dlplay.export.notebook import notebook
from dlplay.export.script import OWN_DATA_DIR, is_own, pytorch_script
from dlplay.i18n import translate
from dlplay.nn.spec import ModelSpec, TrainConfig

FOLDER = "dlplay_run"  # the zip's one top folder
ZIP_NAME = "dlplay_run.zip"


def check_exportable(config: TrainConfig) -> None:
    """UserError (in the page's language) when a run's own dataset is no longer in this session: its code
    would have no data to read."""
    if not is_own(config.dataset):
        return
    entry = OWN.get(config.dataset)
    if entry is None or not entry[1].is_file():
        raise UserError("ownexport.gone", title=entry[0].title if entry else config.dataset)


def _npz(images: np.ndarray, labels: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.savez_compressed(out, images=np.ascontiguousarray(images, dtype=np.uint8),
                        labels=np.ascontiguousarray(labels, dtype=np.int64))
    return out.getvalue()


def own_zip(spec: ModelSpec, config: TrainConfig, lang: str = "en") -> bytes:
    """The zip of a run on an own dataset (the layout in the module's docstring); comments in ``lang``."""
    check_exportable(config)
    info, path = OWN[config.dataset]
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, ValueError, KeyError) as exc:
        raise UserError("ownexport.gone", title=info.title) from exc
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{FOLDER}/dlplay_run.py", pytorch_script(spec, config, lang))
        archive.writestr(f"{FOLDER}/dlplay_run.ipynb", notebook(spec, config, lang))
        archive.writestr(f"{FOLDER}/dlplay_run_keras.py", keras_script(spec, config, lang))
        archive.writestr(f"{FOLDER}/README.txt", translate("ownexport.readme", lang, title=info.title,
                                                           train=len(arrays["y_train"]), test=len(arrays["y_test"]),
                                                           classes=", ".join(info.classes)) + "\n")
        data = f"{FOLDER}/{OWN_DATA_DIR}"
        archive.writestr(f"{data}/train.npz", _npz(arrays["x_train"], arrays["y_train"]))
        archive.writestr(f"{data}/test.npz", _npz(arrays["x_test"], arrays["y_test"]))
        archive.writestr(f"{data}/classes.json", json.dumps(list(info.classes), ensure_ascii=False, indent=1) + "\n")
    return out.getvalue()

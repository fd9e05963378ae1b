"""A run on a learner's own dataset exports as a zip of code and data (dlplay/export/owncode.py): unzipped,
its PyTorch script (a subprocess) and its notebook (nbclient) train on the dataset's files and reproduce
the app's run; a dataset no longer in the session gets a message instead of code that cannot run.

The own datasets are made as a learner makes them on My data (dlplay/owndata.py): a zip of image folders of
real MNIST digits, and a CSV of 784 pixel columns (Kaggle's layout). The built-in iris CSV has two columns:
the app trains it only in the 2-D playground (no Code tab there), so Train cannot export it (checked below)."""
from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from dlplay import owndata
from dlplay.data import datasets as data
from dlplay.errors import UserError
from dlplay.export.owncode import FOLDER, check_exportable, own_zip
from dlplay.export.script import pytorch_script
from dlplay.i18n import translate
from dlplay.nn.spec import LayerSpec, ModelSpec, TrainConfig, dense_spec
from helpers import train_to_end
from test_owndata import LIMITS, digit_members, make_zip

RESULT = re.compile(r"TEST ACCURACY (\d\.\d+)")
THREADS = "1"  # the app's run trains with torch.set_num_threads(1) (conftest); the script gets OMP_NUM_THREADS=1


@pytest.fixture(scope="module")
def own_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("own")
    yield root
    owndata.forget("export-test", root)


def registered(own: owndata.OwnData, root: Path):
    info = owndata.register(own, "export-test", root)
    return info, data.load_dataset(info.name, download=False)


def unzip(raw: bytes, folder: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        archive.extractall(folder)
    return folder / FOLDER


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=THREADS, PYTHONPATH="")  # the script must not need dlplay
    env.pop("DLPLAY_DATA_DIR", None)  # nor MNIST: it reads its own data/ folder
    return env


def test_a_zip_of_image_folders_exports_with_its_files_and_the_script_reproduces_the_run(mnist, own_root, tmp_path):
    own = owndata.read_upload(make_zip(digit_members(mnist, digits=(2, 5, 8), per_class=120)), "digits.zip", LIMITS)
    info, dataset = registered(own, own_root)
    spec = dataclasses.replace(dense_spec([32, 16], "tanh", dropout=0.1), num_classes=3)
    config = TrainConfig(dataset=info.name, epochs=3, seed=11, batch_size=32, lr=3e-3, val_share=0.1,
                         schedule="cosine")
    session = train_to_end(dataset, spec, config)
    app_acc = session.snapshot().epochs[-1].test_acc

    raw = own_zip(spec, config, "zh")
    folder = unzip(raw, tmp_path)
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert names == {"dlplay_run.py", "dlplay_run.ipynb", "dlplay_run_keras.py", "README.txt",
                     "data/train.npz", "data/test.npz", "data/classes.json"}
    # the data: plain arrays (no pickles), the app's own split, the class names
    assert json.loads((folder / "data" / "classes.json").read_text(encoding="utf-8")) == ["d2", "d5", "d8"]
    for part in ("train", "test"):
        with np.load(folder / "data" / f"{part}.npz", allow_pickle=False) as npz:
            assert npz["images"].dtype == np.uint8
            assert npz["labels"].dtype == np.int64
            np.testing.assert_array_equal(npz["images"], getattr(dataset, f"{part}_images").numpy())
            np.testing.assert_array_equal(npz["labels"], getattr(dataset, f"{part}_labels").numpy())
    source = (folder / "dlplay_run.py").read_text(encoding="utf-8")
    assert translate("ownexport.c_data_where", "zh") in source
    assert "allow_pickle=False" in source
    compile((folder / "dlplay_run_keras.py").read_text(encoding="utf-8"), "keras.py", "exec")

    done = subprocess.run([sys.executable, "-I", "dlplay_run.py"], capture_output=True, text=True, cwd=folder,
                          env=_env(), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{len(dataset.train_labels) - round(0.1 * len(dataset.train_labels))} images" in done.stdout
    script_acc = float(RESULT.findall(done.stdout)[-1])
    print(f"own images: app {app_acc:.6f}, script {script_acc:.6f}")
    assert abs(script_acc - app_acc) <= 0.003, (script_acc, app_acc)
    theirs = torch.load(folder / "model.pt", weights_only=True)  # on the CPU, same threads: bit for bit
    ours = session.state_dict()
    assert len(theirs) == len(ours)  # the same tensors in the same order (the script names its layers)
    for (name, a), b in zip(ours.items(), theirs.values()):
        assert a.shape == b.shape, name
        assert torch.equal(a, b), name
    assert script_acc == app_acc


def test_a_pixel_csv_exports_and_its_notebook_executes_to_the_run_s_accuracy(mnist, own_root, tmp_path):
    import nbclient
    import nbformat

    images, labels = mnist.test_images.numpy(), mnist.test_labels.numpy()
    keep = np.flatnonzero(np.isin(labels, (3, 4)))[:200]
    header = "label," + ",".join(f"pixel{i}" for i in range(784))
    lines = [header] + [f"{'three' if labels[i] == 3 else 'four'}," + ",".join(map(str, images[i].reshape(-1)))
                        for i in keep]
    own = owndata.read_upload("\n".join(lines).encode(), "kaggle.csv", LIMITS)
    info, dataset = registered(own, own_root)
    spec = ModelSpec(layers=(LayerSpec("conv2d", 4, "relu", kernel=3, padding=1),
                             LayerSpec("maxpool", 1, "identity", kernel=2, stride=2)), num_classes=2)
    config = TrainConfig(dataset=info.name, epochs=2, seed=4, batch_size=25, val_share=0.0, optimizer="adam", lr=2e-3)
    session = train_to_end(dataset, spec, config)
    app_acc = session.snapshot().epochs[-1].test_acc

    folder = unzip(own_zip(spec, config, "en"), tmp_path)
    assert json.loads((folder / "data" / "classes.json").read_text(encoding="utf-8")) == ["four", "three"]
    nb = nbformat.read(folder / "dlplay_run.ipynb", as_version=4)
    old = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = THREADS  # the kernel inherits the environment
    try:
        nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                resources={"metadata": {"path": str(folder)}}).execute()
    finally:
        if old is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = old
    text = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs)
    nb_acc = float(RESULT.findall(text)[-1])
    print(f"own CSV: app {app_acc:.6f}, notebook {nb_acc:.6f}")
    assert abs(nb_acc - app_acc) <= 0.003
    assert nb_acc == app_acc
    assert (folder / "model.pt").exists()


def test_a_dataset_no_longer_in_the_session_gets_a_message_not_code(mnist, tmp_path):
    own = owndata.read_upload(make_zip(digit_members(mnist, digits=(0, 1), per_class=6)), "gone.zip", LIMITS)
    info = owndata.register(own, "export-gone", tmp_path)
    config = TrainConfig(dataset=info.name)
    spec = dataclasses.replace(dense_spec([8]), num_classes=2)
    check_exportable(config)  # still here
    (tmp_path / "export-gone" / f"{info.name}.npz").unlink()  # its file removed
    for forget in (False, True):
        if forget:
            owndata.forget("export-gone", tmp_path)  # the session ended
        with pytest.raises(UserError) as caught:
            own_zip(spec, config, "en")
        exc = caught.value
        assert exc.key == "ownexport.gone"
        assert "My data" in exc.message("en")
        assert "我的数据" in exc.message("zh")
    check_exportable(TrainConfig())  # MNIST: nothing to check


def test_mnist_scripts_are_unchanged_by_own_data_export():
    source = pytorch_script(dense_spec([8]), TrainConfig(), "en")
    assert "\nimport json\n" not in source
    assert "DATA_DIR = HERE" not in source
    assert "def read_idx(path):" in source


def test_the_iris_csv_is_a_table_the_train_page_does_not_take(own_root):
    own = owndata.read_upload(owndata.example_csv(), "iris.csv", LIMITS)
    assert not own.trainable
    assert own.plane_ready
    with pytest.raises(UserError):
        owndata.register(own, "export-test", own_root)

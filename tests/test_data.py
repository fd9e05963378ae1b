"""dlplay.data.datasets: the real MNIST sample and Debian's Fashion-MNIST, every lookup layout, every kind of
broken file, and the downloader against a local HTTP server (never the real network)."""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.server
import os
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from dlplay.data import datasets as data
from dlplay.data.datasets import DATASETS, DataFile, SearchPaths, UserError

SAMPLE = Path(os.environ.get("DLPLAY_DATA_DIR")
              or Path(__file__).resolve().parents[1].parent / "shared/datasets/mnist-sample")
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST = DATASETS["mnist"]
NAMES = MNIST.file_names  # train images, train labels, test images, test labels


# ---------------------------------------------------------------- helpers

def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    """An IDX file holding ``array`` (big-endian, as the format says)."""
    dtype = {0x08: ">u1", 0x0D: ">f4"}[code]
    header = bytes([0, 0, code, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(dtype).tobytes()


@pytest.fixture(scope="module")
def sample() -> data.Dataset:
    return data.load_dataset("mnist", download=False, paths=SearchPaths(data_dir=SAMPLE, system_dirs=()))


@pytest.fixture
def isolated(tmp_path: Path) -> SearchPaths:
    """Look only in an empty cache folder: nothing from this machine leaks in."""
    return SearchPaths(cache_dir=tmp_path / "cache", system_dirs=())


def write_folder(folder: Path, parts: dict[str, bytes], gz: bool = True) -> Path:
    """The four files of a dataset: copies of the real sample files unless ``parts`` replaces one."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        if name not in parts and gz:
            shutil.copyfile(SAMPLE / name, folder / name)
            continue
        raw = parts.get(name) or gzip.decompress((SAMPLE / name).read_bytes())
        if gz:
            (folder / name).write_bytes(gzip.compress(raw, compresslevel=1))
        else:
            (folder / name.removesuffix(".gz")).write_bytes(raw)
    return folder


# ---------------------------------------------------------------- real data

def test_real_sample_loads_from_dlplay_data_dir(monkeypatch):
    monkeypatch.setenv("DLPLAY_DATA_DIR", str(SAMPLE))
    ds = data.load_dataset("mnist", download=False)
    assert ds.source == str(SAMPLE)
    assert ds.source_kind == "data_dir"
    assert ds.train_images.shape == (10000, 28, 28)
    assert ds.test_images.shape == (10000, 28, 28)
    assert ds.train_images.dtype == torch.uint8
    assert ds.test_images.dtype == torch.uint8
    assert ds.train_labels.dtype == torch.int64
    assert ds.test_labels.dtype == torch.int64
    assert ds.train_labels.bincount().tolist() == [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    assert ds.test_labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert ds.sizes == {"train": 10000, "test": 10000}
    assert int(ds.train_images.max()) == 255
    assert int(ds.train_images.min()) == 0
    assert data.dataset_status("mnist") == (True, str(SAMPLE))


def test_fashion_mnist_from_debian_folder(tmp_path):
    ds = data.load_dataset("fashion-mnist", download=False, paths=SearchPaths(cache_dir=tmp_path))
    assert ds.source == str(FASHION_DIR)
    assert ds.source_kind == "system"
    assert ds.sizes == {"train": 60000, "test": 10000}
    assert ds.train_images.shape == (60000, 28, 28)
    assert ds.train_images.dtype == torch.uint8
    assert ds.train_labels.bincount().tolist() == [6000] * 10
    assert ds.test_labels[:5].tolist() == [9, 2, 1, 1, 6]
    assert ds.info.num_classes == 10
    assert ds.info.classes[9] == "Ankle boot"
    # the registry's normalisation constants are those of the real training set
    pixels = ds.train_images.float() / 255
    assert pixels.mean().item() == pytest.approx(ds.info.mean, abs=5e-4)
    assert pixels.std().item() == pytest.approx(ds.info.std, abs=5e-4)


def test_flat_data_dir_is_only_mnist_subfolders_name_the_dataset(tmp_path):
    paths = SearchPaths(data_dir=SAMPLE, cache_dir=tmp_path / "cache", system_dirs=())
    assert data.locate("fashion-mnist", paths=paths) is None
    root = tmp_path / "datasets"
    write_folder(root / "fashion-mnist", {})
    source = data.locate("fashion-mnist", paths=dataclasses.replace(paths, data_dir=root))
    assert source.kind == "data_dir"
    assert source.path == root / "fashion-mnist"
    assert os.fspath(source) == str(root / "fashion-mnist")


def test_to_device_and_normalize(sample):
    assert sample.to("cpu") is sample
    moved = sample.to("meta")
    assert moved.device.type == "meta"
    assert moved.train_images.dtype == torch.uint8
    assert moved.test_labels.shape == (10000,)
    assert sample.device.type == "cpu"
    x = data.normalize(sample.train_images[:256], "mnist")
    assert x.dtype == torch.float32
    assert x.shape == (256, 28, 28)
    expected = (sample.train_images[:256].double() / 255 - 0.1307) / 0.3081
    assert torch.allclose(x.double(), expected, atol=1e-5)
    assert sample.train_images.dtype == torch.uint8  # not modified in place
    full = data.normalize(sample.train_images, MNIST)
    assert abs(full.mean().item()) < 0.01
    assert abs(full.std().item() - 1) < 0.01


def test_class_labels_are_translated():
    assert data.class_label("fashion-mnist", 7) == "Sneaker"
    assert data.class_label("fashion-mnist", 7, "zh") == "运动鞋"
    assert data.class_label("mnist", 3, "zh") == "3"


def test_unknown_dataset_name():
    with pytest.raises(UserError) as err:
        data.get_info("cifar")
    assert err.value.key == "data.unknown_dataset"
    assert "fashion-mnist" in str(err.value)


# ---------------------------------------------------------------- broken files

def _labels() -> bytes:
    return gzip.decompress((SAMPLE / "t10k-labels-idx1-ubyte.gz").read_bytes())


def _images(n: int = 50) -> np.ndarray:
    raw = gzip.decompress((SAMPLE / "t10k-images-idx3-ubyte.gz").read_bytes())
    return np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)[:n]


BROKEN_IDX = {
    "bad_magic": (lambda: b"\x01\x00" + _labels()[2:], "data.bad_magic"),
    "text_file": (lambda: b"hello, world\n", "data.bad_magic"),
    "wrong_dtype_code": (lambda: idx_bytes(_images(3).astype(np.float32) / 255, code=0x0D), "data.bad_dtype"),
    "unknown_dtype_code": (lambda: _labels()[:2] + b"\x07" + _labels()[3:], "data.unknown_dtype"),
    "zero_dims": (lambda: b"\x00\x00\x08\x00", "data.bad_ndim"),
    "truncated": (lambda: _labels()[:-100], "data.truncated"),
    "truncated_header": (lambda: b"\x00\x00\x08\x03\x00\x00", "data.truncated"),
    "trailing_bytes": (lambda: _labels() + b"\x00" * 5, "data.trailing_bytes"),
}


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
@pytest.mark.parametrize("case", sorted(BROKEN_IDX))
def test_parse_idx_rejects_broken_files(tmp_path, case, gz):
    make, key = BROKEN_IDX[case]
    path = tmp_path / f"broken-{case}"
    path.write_bytes(gzip.compress(make()) if gz else make())
    with pytest.raises(UserError) as err:
        data.parse_idx(path)
    assert err.value.key == key
    assert str(path) in str(err.value)
    assert str(path) in err.value.message("zh")


def test_parse_idx_reads_raw_and_gz_alike(tmp_path):
    (tmp_path / "a").write_bytes(_labels())
    (tmp_path / "a.gz").write_bytes(gzip.compress(_labels()))
    raw, gz = data.parse_idx(tmp_path / "a"), data.parse_idx(tmp_path / "a.gz", ndim=1)
    assert raw.dtype == np.uint8
    assert raw.shape == (10000,)
    assert np.array_equal(raw, gz)
    assert raw.flags.writeable


@pytest.mark.parametrize("damage", ["flipped", "cut"])
def test_corrupt_gzip(tmp_path, damage):
    blob = bytearray((SAMPLE / "t10k-labels-idx1-ubyte.gz").read_bytes())
    if damage == "flipped":
        blob[len(blob) // 2: len(blob) // 2 + 16] = bytes(16)
    else:
        blob = blob[: len(blob) // 2]
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(bytes(blob))
    with pytest.raises(UserError) as err:
        data.parse_idx(path)
    assert err.value.key == "data.bad_gzip"
    assert str(path) in str(err.value)


def _load_folder_with(tmp_path: Path, name: str, raw: bytes) -> UserError:
    folder = write_folder(tmp_path / "data" / "mnist", {name: raw})
    paths = SearchPaths(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", system_dirs=())
    with pytest.raises(UserError) as err:
        data.load_dataset("mnist", download=False, paths=paths)
    assert str(folder / name) in str(err.value)
    return err.value


def test_dataset_rejects_labels_with_wrong_ndim(tmp_path):
    labels = np.frombuffer(_labels(), np.uint8, offset=8).reshape(100, 100, 1)
    assert _load_folder_with(tmp_path, "t10k-labels-idx1-ubyte.gz", idx_bytes(labels)).key == "data.bad_ndim"


def test_dataset_rejects_image_label_count_mismatch(tmp_path):
    labels = np.frombuffer(_labels(), np.uint8, offset=8)[:9999]
    err = _load_folder_with(tmp_path, "t10k-labels-idx1-ubyte.gz", idx_bytes(labels))
    assert err.key == "data.count_mismatch"
    assert "9999" in str(err)
    assert "10000" in str(err)


def test_dataset_rejects_label_out_of_range(tmp_path):
    labels = np.frombuffer(_labels(), np.uint8, offset=8).copy()
    labels[1234] = 10
    err = _load_folder_with(tmp_path, "t10k-labels-idx1-ubyte.gz", idx_bytes(labels))
    assert err.key == "data.label_out_of_range"
    assert "10" in str(err)


def test_dataset_rejects_wrong_image_size(tmp_path):
    images = np.zeros((10000, 27, 28), np.uint8)
    err = _load_folder_with(tmp_path, "t10k-images-idx3-ubyte.gz", idx_bytes(images))
    assert err.key == "data.bad_image_shape"
    assert "27x28" in str(err)


# ---------------------------------------------------------------- other tools' layouts

def test_torchvision_layout_with_uncompressed_files(tmp_path, isolated, sample, monkeypatch):
    write_folder(tmp_path / "tv" / "MNIST" / "raw", {}, gz=False)
    paths = dataclasses.replace(isolated, torchvision_roots=(tmp_path / "elsewhere", tmp_path / "tv"))
    ds = data.load_dataset("mnist", download=False, paths=paths)
    assert ds.source_kind == "torchvision"
    assert ds.source == str(tmp_path / "tv" / "MNIST" / "raw")
    assert torch.equal(ds.train_images, sample.train_images)
    assert torch.equal(ds.test_labels, sample.test_labels)
    monkeypatch.setenv("DLPLAY_TORCHVISION_ROOT", str(tmp_path / "tv"))
    assert SearchPaths.default().torchvision_roots[0] == tmp_path / "tv"


def test_kaggle_file_names_are_accepted(tmp_path, isolated):
    folder = write_folder(tmp_path / "data" / "mnist", {}, gz=False)
    for path in folder.iterdir():
        path.rename(folder / path.name.replace("-idx", ".idx"))
    paths = dataclasses.replace(isolated, data_dir=tmp_path / "data")
    ds = data.load_dataset("mnist", download=False, paths=paths)
    assert ds.sizes == {"train": 10000, "test": 10000}


def test_keras_npz_layout(tmp_path, isolated, sample):
    keras = tmp_path / "keras" / "datasets"
    keras.mkdir(parents=True)
    np.savez(keras / "mnist.npz", x_train=sample.train_images.numpy(),
             y_train=sample.train_labels.numpy().astype(np.uint8),
             x_test=sample.test_images.numpy(), y_test=sample.test_labels.numpy().astype(np.uint8))
    paths = dataclasses.replace(isolated, keras_dir=keras)
    ds = data.load_dataset("mnist", download=False, paths=paths)
    assert ds.source_kind == "keras"
    assert ds.source == str(keras / "mnist.npz")
    assert ds.train_labels.dtype == torch.int64
    assert torch.equal(ds.train_labels, sample.train_labels)
    assert torch.equal(ds.test_images, sample.test_images)
    assert data.locate("fashion-mnist", paths=paths) is None  # mnist.npz is not Fashion-MNIST


@pytest.mark.parametrize("problem", ["missing_key", "pickled", "not_a_zip", "float_images"])
def test_broken_keras_npz(tmp_path, isolated, problem):
    keras = tmp_path / "keras"
    keras.mkdir()
    path = keras / "mnist.npz"
    x, y = _images(10), np.arange(10, dtype=np.uint8)
    if problem == "missing_key":
        np.savez(path, x_train=x, y_train=y, x_test=x)
    elif problem == "pickled":
        np.savez(path, x_train=x, y_train=np.array([{"a": 1}] * 10, dtype=object), x_test=x, y_test=y)
    elif problem == "float_images":
        np.savez(path, x_train=x / 255.0, y_train=y, x_test=x, y_test=y)
    else:
        path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(UserError) as err:
        data.load_dataset("mnist", download=False, paths=dataclasses.replace(isolated, keras_dir=keras))
    assert str(path) in str(err.value)
    expected = {"missing_key": "data.npz_missing", "float_images": "data.npz_bad_dtype"}
    assert err.value.key == expected.get(problem, "data.bad_npz")


def test_lookup_order(tmp_path, sample):
    tv, keras, cache = tmp_path / "tv", tmp_path / "keras", tmp_path / "cache"
    write_folder(tv / "MNIST" / "raw", {})
    write_folder(cache / "mnist", {})
    keras.mkdir()
    np.savez(keras / "mnist.npz", x_train=_images(5), y_train=np.zeros(5, np.uint8),
             x_test=_images(5), y_test=np.zeros(5, np.uint8))
    paths = SearchPaths(data_dir=SAMPLE, cache_dir=cache, torchvision_roots=(tv,), keras_dir=keras,
                        system_dirs=())
    kinds = []
    for remove in (None, "data_dir", cache / "mnist", tv):
        if remove == "data_dir":
            paths = dataclasses.replace(paths, data_dir=None)
        elif remove is not None:
            shutil.rmtree(remove)
        kinds.append(data.locate("mnist", paths=paths).kind)
    assert kinds == ["data_dir", "cache", "torchvision", "keras"]
    (keras / "mnist.npz").unlink()
    assert data.locate("mnist", paths=paths) is None
    # a folder with only three of the four files is not a source
    write_folder(cache / "mnist", {})
    (cache / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    assert data.locate("mnist", paths=paths) is None


def test_not_found_says_which_files_go_where(isolated):
    assert data.dataset_status("mnist", paths=isolated) == (False, str(isolated.cache_dir / "mnist"))
    with pytest.raises(UserError) as err:
        data.load_dataset("fashion-mnist", download=False, paths=isolated)
    assert err.value.key == "data.not_found"
    for lang in ("en", "zh"):
        text = err.value.message(lang)
        assert all(name in text for name in NAMES), text
        assert str(isolated.cache_dir / "fashion-mnist") in text
        assert "DLPLAY_DATA_DIR" in text
        assert "fashion-mnist" + os.sep in text


# ---------------------------------------------------------------- downloading

class Server:
    """A local HTTP server: ``routes[path] = (body, mode)``, mode "ok" or "cut"; others get 404."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[bytes, str]] = {}
        self.requests: list[str] = []
        routes, requests = self.routes, self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                if self.path not in routes:
                    self.send_error(404)
                    return
                body, mode = routes[self.path]
                self.send_response(200)
                extra = 100_000 if mode == "cut" else 0
                self.send_header("Content-Length", str(len(body) + extra))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if mode == "cut" else body)
                self.close_connection = True

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = Server()
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def tiny() -> tuple[data.DatasetInfo, dict[str, bytes]]:
    """A small real dataset (60 sample digits, 40 train / 20 test) with its own checksums."""
    images = _images(60)
    labels = np.frombuffer(_labels(), np.uint8, offset=8)[:60]
    blobs = dict(zip(NAMES, (gzip.compress(idx_bytes(a), mtime=0)
                             for a in (images[:40], labels[:40], images[40:], labels[40:]))))
    files = tuple(DataFile(name, hashlib.md5(b).hexdigest(), hashlib.sha256(b).hexdigest(), len(b))
                  for name, b in blobs.items())
    info = dataclasses.replace(MNIST, name="tiny", title="Tiny", files=files, mirrors=())
    return info, blobs


def unreachable_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def serve(server: Server, prefix: str, blobs: dict[str, bytes], mode: str = "ok",
          only: str | None = None) -> str:
    for name, body in blobs.items():
        if only is None or name == only:
            server.routes[f"/{prefix}/{name}"] = (body, mode)
    return f"{server.url}/{prefix}/"


def assert_clean(folder: Path, expected: set[str]) -> None:
    assert {p.name for p in folder.iterdir()} == expected  # no temp or partial file


def test_download_success_with_progress(tmp_path, server, tiny, isolated):
    info, blobs = tiny
    good = serve(server, "good", blobs)
    calls = []
    dest = data.download(info, tmp_path / "dl", mirrors=[good], progress=lambda *a: calls.append(a))
    assert dest == tmp_path / "dl"
    assert_clean(dest, set(NAMES))
    assert all((dest / n).read_bytes() == b for n, b in blobs.items())
    for name, body in blobs.items():
        mine = [c for c in calls if c[0] == name]
        assert mine[0] == (name, 0, len(body))
        assert mine[-1] == (name, len(body), len(body))
        assert [c[1] for c in mine] == sorted(c[1] for c in mine)
    # files already present with the right checksum are not fetched again
    before = len(server.requests)
    data.download(info, dest, mirrors=[good])
    assert len(server.requests) == before
    # load_dataset downloads into the cache and loads from there
    ds = data.load_dataset(info, paths=dataclasses.replace(isolated), mirrors=[good])
    assert ds.source_kind == "cache"
    assert ds.source == str(isolated.cache_dir / "tiny")
    assert ds.sizes == {"train": 40, "test": 20}
    assert ds.test_labels.dtype == torch.int64
    assert ds.train_labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert data.dataset_status(info, paths=isolated) == (True, str(isolated.cache_dir / "tiny"))


def test_download_uses_registry_mirrors_by_default(tmp_path, server, tiny):
    info, blobs = tiny
    info = dataclasses.replace(info, mirrors=(serve(server, "m", blobs),))
    data.download(info, tmp_path / "dl")
    assert_clean(tmp_path / "dl", set(NAMES))


def test_download_falls_back_to_next_mirror(tmp_path, server, tiny):
    info, blobs = tiny
    mirrors = [unreachable_url(), f"{server.url}/missing/", serve(server, "good", blobs)]
    data.download(info, tmp_path / "dl", mirrors=mirrors)
    assert_clean(tmp_path / "dl", set(NAMES))
    assert f"/missing/{NAMES[0]}" in server.requests


def test_checksum_mismatch_tries_next_mirror(tmp_path, server, tiny):
    info, blobs = tiny
    bad_blobs = {n: b[:-1] + bytes([b[-1] ^ 1]) for n, b in blobs.items()}
    mirrors = [serve(server, "bad", bad_blobs), serve(server, "good", blobs)]
    data.download(info, tmp_path / "dl", mirrors=mirrors)
    assert_clean(tmp_path / "dl", set(NAMES))
    assert all((tmp_path / "dl" / n).read_bytes() == b for n, b in blobs.items())
    assert f"/bad/{NAMES[2]}" in server.requests


def test_sha256_is_checked_too(tmp_path, server, tiny):
    info, blobs = tiny
    files = list(info.files)
    files[1] = dataclasses.replace(files[1], sha256="0" * 64)
    info = dataclasses.replace(info, files=tuple(files))
    with pytest.raises(UserError) as err:
        data.download(info, tmp_path / "dl", mirrors=[serve(server, "good", blobs)])
    assert "sha256" in str(err.value)
    assert_clean(tmp_path / "dl", set(NAMES) - {NAMES[1]})


def test_bad_checksum_everywhere_fails_and_leaves_no_file(tmp_path, server, tiny):
    info, blobs = tiny
    bad = dict(blobs, **{NAMES[0]: gzip.compress(b"wrong")})
    mirrors = [serve(server, "a", bad), serve(server, "b", bad)]
    with pytest.raises(UserError) as err:
        data.download(info, tmp_path / "dl", mirrors=mirrors)
    assert err.value.key == "data.download_failed"
    text = str(err.value)
    assert NAMES[0] in text
    assert str(tmp_path / "dl") in text
    assert f"{mirrors[0]}{NAMES[0]}" in text
    assert f"{mirrors[1]}{NAMES[0]}" in text
    assert_clean(tmp_path / "dl", set(NAMES[1:]))


def test_cut_connection_tries_next_mirror(tmp_path, server, tiny):
    info, blobs = tiny
    calls = []
    mirrors = [serve(server, "cut", blobs, mode="cut"), serve(server, "good", blobs)]
    data.download(info, tmp_path / "dl", mirrors=mirrors, progress=lambda *a: calls.append(a))
    assert_clean(tmp_path / "dl", set(NAMES))
    assert all((tmp_path / "dl" / n).read_bytes() == b for n, b in blobs.items())
    assert any(c[2] == len(blobs[c[0]]) + 100_000 for c in calls)  # the cut responses were seen


def test_cut_connection_everywhere_fails_and_leaves_no_partial_file(tmp_path, server, tiny):
    info, blobs = tiny
    mirrors = [serve(server, "cut", blobs, mode="cut")]
    with pytest.raises(UserError) as err:
        data.download(info, tmp_path / "dl", mirrors=mirrors)
    assert err.value.key == "data.download_failed"
    assert all(n in str(err.value) for n in NAMES)
    assert_clean(tmp_path / "dl", set())


def test_offline_load_says_which_files_go_where(server, tiny, isolated):
    info, _ = tiny
    with pytest.raises(UserError) as err:
        data.load_dataset(info, paths=isolated, mirrors=[unreachable_url(), f"{server.url}/none/"])
    assert err.value.key == "data.not_found_offline"
    text = str(err.value)
    assert all(n in text for n in NAMES)
    assert str(isolated.cache_dir / "tiny") in text
    assert "DLPLAY_DATA_DIR" in text
    assert "restart" in text
    # what to do comes first; the failed URLs are a parameter the page folds away, not the message
    assert "http" not in text
    assert text.index(str(isolated.cache_dir / "tiny")) < text.index("DLPLAY_DATA_DIR")
    assert f"{server.url}/none/{NAMES[0]}" in err.value.params["reason"]
    assert err.value.params["name"] == "tiny"
    assert_clean(isolated.cache_dir / "tiny", set())


# ---------------------------------------------------------------- the Home page's check

def test_check_dataset_validates_like_training_and_caches_per_file_state(tmp_path, monkeypatch):
    folder = write_folder(tmp_path / "data" / "mnist", {})
    paths = SearchPaths(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", system_dirs=())
    reads = []
    real = data.read_source
    monkeypatch.setattr(data, "read_source", lambda *a: reads.append(a) or real(*a))
    check = data.check_dataset("mnist", paths=paths)
    assert check.found
    assert check.usable
    assert check.where == str(tmp_path / "data" / "mnist")
    assert data.check_dataset("mnist", paths=paths).usable
    assert len(reads) == 1  # cached: nothing re-read
    # a damaged file (what a broken download leaves): found, but not usable, with the reason training gives
    target = folder / NAMES[3]
    blob = target.read_bytes()
    target.write_bytes(blob[: len(blob) // 2])
    check = data.check_dataset("mnist", paths=paths)
    assert check.found
    assert not check.usable
    assert len(reads) == 2
    assert check.problem.key == "data.bad_gzip"
    assert str(target) in str(check.problem)
    target.write_bytes(blob)  # repaired: the new size and mtime make it look again
    assert data.check_dataset("mnist", paths=paths).usable
    assert len(reads) == 3
    empty = SearchPaths(cache_dir=tmp_path / "nothing", system_dirs=())
    check = data.check_dataset("mnist", paths=empty)
    assert not check.found
    assert check.problem is None
    assert check.where == str(tmp_path / "nothing" / "mnist")

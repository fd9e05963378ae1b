"""Datasets: the registry, IDX parsing, locating files on this machine, downloading, validation.

Lookup order of :func:`locate` (first hit wins):

1. ``$DLPLAY_DATA_DIR/<name>/`` - the four files in a subfolder named after the dataset; for the
   default dataset (``mnist``) the four files may also sit directly in ``$DLPLAY_DATA_DIR``
   (MNIST and Fashion-MNIST use the same file names, so a flat folder is only taken as MNIST);
2. the app's cache ``<cache>/<name>/`` where ``<cache>`` is the ``cache_dir`` argument, else
   ``$DLPLAY_CACHE_DIR``, else ``$XDG_CACHE_HOME/dlplay``, else ``~/.cache/dlplay``;
3. torchvision's ``<root>/<MNIST|FashionMNIST>/raw/`` for the roots ``$DLPLAY_TORCHVISION_ROOT``
   (``os.pathsep``-separated), ``~/data`` and ``./data``;
4. Keras's cache ``$KERAS_HOME/datasets`` or ``~/.keras/datasets`` (``mnist.npz``, or the folder
   ``fashion-mnist/`` of IDX files);
5. system packages (Debian's ``/usr/share/datasets/fashion-mnist/``).

Every folder layout accepts the files gzipped (canonical names) or uncompressed. Local files are
validated structurally, not by checksum; downloads are verified by md5 (and sha256 where known).
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.client
import os
import tempfile
import threading
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import torch

from dlplay.errors import UserError
from dlplay.i18n import lookup

ROLES = ("train_images", "train_labels", "test_images", "test_labels")
DEFAULT_DATASET = "mnist"
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
CHUNK_SIZE = 1 << 16
PROBE_TIMEOUT_S = 3.0  # a mirror that does not answer within this is taken as unreachable (offline, a firewall)
ProgressCallback = Callable[[str, int, "int | None"], None]

# IDX type codes -> (numpy dtype, readable name); only 0x08 is accepted for these datasets.
IDX_TYPES: dict[int, tuple[str, str]] = {
    0x08: ("u1", "unsigned byte"), 0x09: ("i1", "signed byte"), 0x0B: (">i2", "int16"),
    0x0C: (">i4", "int32"), 0x0D: (">f4", "float32"), 0x0E: (">f8", "float64"),
}


@dataclass(frozen=True)
class DataFile:
    """One canonical file of a dataset and the checksums of its published bytes."""

    name: str
    md5: str
    sha256: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """Everything dlplay knows about one IDX dataset; adding a dataset = adding one of these."""

    name: str
    title: str
    files: tuple[DataFile, DataFile, DataFile, DataFile]  # in the order of ROLES
    mirrors: tuple[str, ...]
    classes: tuple[str, ...]
    mean: float
    std: float
    image_shape: tuple[int, int] = (28, 28)
    torchvision_folder: str | None = None
    keras_npz: str | None = None
    keras_folder: str | None = None
    system_dirs: tuple[str, ...] = ()
    credit: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def file_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.files)


# Checksums: md5 as torchvision checks them. sha256 from tensorflow/datasets' url_checksums
# (the t10k MNIST ones re-computed here from the canonical files in the shared sample). Debian's
# Fashion-MNIST files are re-compressed (no file name in the gzip header, other bytes), so their
# checksums differ from the published ones; local folders are never checked by checksum.
DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        name="mnist", title="MNIST",
        files=(
            DataFile("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                     "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
            DataFile("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432",
                     "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
            DataFile("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3",
                     "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
            DataFile("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c",
                     "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
        ),
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        classes=tuple(str(d) for d in range(10)), mean=0.1307, std=0.3081,
        torchvision_folder="MNIST", keras_npz="mnist.npz",
        credit="Yann LeCun, Corinna Cortes, Christopher J.C. Burges (CC BY-SA 3.0)",
    ),
    "fashion-mnist": DatasetInfo(
        name="fashion-mnist", title="Fashion-MNIST",
        files=(
            DataFile("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                     "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
            DataFile("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe",
                     "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515),
            DataFile("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79",
                     "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102),
            DataFile("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310",
                     "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148),
        ),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        mean=0.2860, std=0.3530,
        torchvision_folder="FashionMNIST", keras_folder="fashion-mnist",
        system_dirs=("/usr/share/datasets/fashion-mnist",),
        credit="Zalando Research (MIT licence)",
    ),
}


# A learner's own datasets (dlplay/owndata.py): name -> (entry, the .npz in the session's data folder with
# the arrays x_train, y_train, x_test, y_test). They load like a Keras .npz (no pickles), from that file only.
OWN: dict[str, tuple[DatasetInfo, Path]] = {}


def register_own(info: DatasetInfo, npz: Path) -> None:
    """Add a learner's own dataset to the registry (its arrays already written to ``npz``)."""
    assert info.name not in DATASETS, info.name
    OWN[info.name] = (info, Path(npz))


def unregister_own(name: str) -> None:
    OWN.pop(name, None)


def get_info(dataset: str | DatasetInfo) -> DatasetInfo:
    """The registry entry for a name (a DatasetInfo passes through unchanged)."""
    if isinstance(dataset, DatasetInfo):
        return dataset
    if dataset in OWN:
        return OWN[dataset][0]
    if dataset not in DATASETS:
        raise UserError("data.unknown_dataset", name=dataset, known=", ".join(DATASETS))
    return DATASETS[dataset]


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded dataset: uint8 images [N, 28, 28] and int64 labels [N], on one device."""

    name: str
    info: DatasetInfo
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    source: str
    source_kind: str = ""

    def to(self, device: str | torch.device) -> Dataset:
        """The same data on ``device`` (self when already there); images stay uint8."""
        device = torch.device(device)
        if self.device == device:
            return self
        moved = {role: getattr(self, role).to(device) for role in ROLES}
        return dataclasses.replace(self, **moved)

    @property
    def device(self) -> torch.device:
        return self.train_images.device

    @property
    def sizes(self) -> dict[str, int]:
        """Number of examples per split: ``{"train": N, "test": M}``."""
        return {"train": int(self.train_images.shape[0]), "test": int(self.test_images.shape[0])}


def class_label(info: str | DatasetInfo, index: int, lang: str = "en") -> str:
    """The translated name of class ``index`` (the registry's name when there is no translation)."""
    info = get_info(info)
    text = lookup(f"data.class.{info.name}.{index}", lang)  # optional: MNIST's digits need none
    return info.classes[index] if text is None else text


def normalize(images: torch.Tensor, info: str | DatasetInfo) -> torch.Tensor:
    """uint8 images -> float32 ``(x/255 - mean)/std``, on the images' device."""
    info = get_info(info)
    return normalize_with(images, torch.tensor(-info.mean / info.std, device=images.device), 1.0 / (255.0 * info.std))


def normalize_with(images: torch.Tensor, neg_shift: torch.Tensor, scale: float) -> torch.Tensor:
    """``neg_shift + scale * images`` as float32 in one kernel (a 0-dim float32 ``neg_shift`` sets
    the result type): on CPU about 15 us per batch of 32 less than convert, multiply, subtract."""
    return torch.add(neg_shift, images, alpha=scale)


# ---------------------------------------------------------------- parsing

def parse_idx(path: str | os.PathLike, *, ndim: int | None = None) -> np.ndarray:
    """Read a gzipped or raw IDX file of unsigned bytes, fully validated (never half-loaded)."""
    path = Path(path)
    file = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError("data.unreadable", file=file, detail=exc.strerror or str(exc)) from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise UserError("data.bad_gzip", file=file, detail=str(exc)) from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise UserError("data.bad_magic", file=file, found=raw[:4].hex(" ") or "-")
    code, dims_count = raw[2], raw[3]
    if code not in IDX_TYPES:
        raise UserError("data.unknown_dtype", file=file, code=f"0x{code:02X}")
    if code != 0x08:
        raise UserError("data.bad_dtype", file=file, code=f"0x{code:02X}", dtype=IDX_TYPES[code][1])
    if dims_count == 0 or (ndim is not None and dims_count != ndim):
        raise UserError("data.bad_ndim", file=file, ndim=dims_count, expected=ndim or ">= 1")
    header = 4 + 4 * dims_count
    if len(raw) < header:
        raise UserError("data.truncated", file=file, expected=header, actual=len(raw))
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims_count)]
    expected = header + int(np.prod(dims, dtype=object))
    if len(raw) < expected:
        raise UserError("data.truncated", file=file, expected=expected, actual=len(raw))
    if len(raw) > expected:
        raise UserError("data.trailing_bytes", file=file, expected=expected, extra=len(raw) - expected)
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def _check_split(images: np.ndarray, labels: np.ndarray, image_file: str, label_file: str,
                 info: DatasetInfo) -> None:
    """Dataset-level checks: image size, label shape and range, matching counts."""
    if images.ndim != 3 or tuple(images.shape[1:]) != info.image_shape:
        raise UserError("data.bad_image_shape", file=image_file, name=info.title,
                        shape="x".join(map(str, images.shape[1:])),
                        expected="x".join(map(str, info.image_shape)))
    if labels.ndim != 1:
        raise UserError("data.bad_ndim", file=label_file, ndim=labels.ndim, expected=1)
    if len(images) == 0:
        raise UserError("data.empty", file=image_file)
    if len(images) != len(labels):
        raise UserError("data.count_mismatch", images=image_file, labels=label_file,
                        n_images=len(images), n_labels=len(labels))
    if labels.min() < 0 or labels.max() >= info.num_classes:
        bad = labels.max() if labels.max() >= info.num_classes else labels.min()
        raise UserError("data.label_out_of_range", file=label_file, value=int(bad),
                        name=info.title, max=info.num_classes - 1)


def _read_npz(path: Path) -> tuple[np.ndarray, ...]:
    """x_train, y_train, x_test, y_test from a Keras ``.npz`` (no pickles)."""
    file, keys = str(path), NPZ_KEYS
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in keys if k not in archive.files]
            if missing:
                raise UserError("data.npz_missing", file=file, missing=", ".join(missing))
            arrays = tuple(archive[k] for k in keys)
    except UserError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError, EOFError...
        raise UserError("data.bad_npz", file=file, detail=str(exc) or type(exc).__name__) from exc
    for key, array in zip(keys, arrays):
        wanted = array.dtype == np.uint8 if key.startswith("x") else array.dtype.kind in "iu"
        if not wanted:
            raise UserError("data.npz_bad_dtype", file=file, array=key, dtype=str(array.dtype))
    return arrays


# ---------------------------------------------------------------- locating

@dataclass(frozen=True)
class DataSource:
    """Where a dataset was found: ``kind`` (data_dir, cache, torchvision, keras, system), the
    folder or ``.npz`` file, and for IDX folders the four files in the order of ROLES."""

    kind: str
    path: Path
    files: tuple[Path, ...] = ()

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)


def _candidates(name: str) -> list[str]:
    """Accepted spellings of one file: gzipped, uncompressed, and Kaggle's ``train-images.idx3-ubyte``."""
    stem = name[:-3] if name.endswith(".gz") else name
    return [name, stem, stem.replace("-idx", ".idx")]


def _idx_folder(kind: str, folder: Path, info: DatasetInfo) -> DataSource | None:
    """The folder as a source when it holds all four files (in any accepted spelling)."""
    found = []
    for name in info.file_names:
        hit = next((folder / c for c in _candidates(name) if (folder / c).is_file()), None)
        if hit is None:
            return None
        found.append(hit)
    return DataSource(kind, folder, tuple(found))


def default_cache_dir() -> Path:
    """``$DLPLAY_CACHE_DIR``, else ``$XDG_CACHE_HOME/dlplay``, else ``~/.cache/dlplay``."""
    if os.environ.get("DLPLAY_CACHE_DIR"):
        return Path(os.environ["DLPLAY_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "dlplay"


@dataclass(frozen=True)
class SearchPaths:
    """The places :func:`locate` looks at; ``SearchPaths.default()`` reads the environment.
    A bare ``SearchPaths(...)`` looks only where it is told (``cache_dir=None``: the default cache;
    ``system_dirs=None``: the dataset's own system folders, ``()`` for none)."""

    data_dir: Path | None = None
    cache_dir: Path | None = None
    torchvision_roots: tuple[Path, ...] = ()
    keras_dir: Path | None = None
    system_dirs: tuple[Path, ...] | None = None

    def __post_init__(self) -> None:
        def as_path(p: str | os.PathLike | None) -> Path | None:
            return None if p is None else Path(p).expanduser()

        set_ = object.__setattr__
        set_(self, "data_dir", as_path(self.data_dir))
        set_(self, "cache_dir", as_path(self.cache_dir) or default_cache_dir())
        set_(self, "torchvision_roots", tuple(Path(p) for p in self.torchvision_roots))
        set_(self, "keras_dir", as_path(self.keras_dir))
        if self.system_dirs is not None:
            set_(self, "system_dirs", tuple(Path(p) for p in self.system_dirs))

    @classmethod
    def default(cls) -> SearchPaths:
        env = os.environ.get
        roots = [Path(p).expanduser() for p in env("DLPLAY_TORCHVISION_ROOT", "").split(os.pathsep) if p]
        keras_home = Path(env("KERAS_HOME") or Path.home() / ".keras")
        data_dir = env("DLPLAY_DATA_DIR")
        return cls(
            data_dir=Path(data_dir) if data_dir else None,
            cache_dir=default_cache_dir(),
            torchvision_roots=(*roots, Path.home() / "data", Path("data")),
            keras_dir=keras_home / "datasets",
        )


def _places(info: DatasetInfo, paths: SearchPaths) -> Iterable[tuple[str, Path]]:
    """(kind, folder or npz file) in lookup order."""
    if paths.data_dir is not None:
        yield "data_dir", paths.data_dir / info.name
        if info.name == DEFAULT_DATASET:
            yield "data_dir", paths.data_dir
    yield "cache", cast(Path, paths.cache_dir) / info.name  # set by __post_init__
    if info.torchvision_folder:
        for root in paths.torchvision_roots:
            yield "torchvision", root / info.torchvision_folder / "raw"
    if paths.keras_dir is not None:
        if info.keras_npz:
            yield "keras", paths.keras_dir / info.keras_npz
        if info.keras_folder:
            yield "keras", paths.keras_dir / info.keras_folder
    dirs = info.system_dirs if paths.system_dirs is None else paths.system_dirs
    for folder in dirs:
        yield "system", Path(folder)


def locate(dataset: str | DatasetInfo, cache_dir: str | os.PathLike | None = None, *,
           paths: SearchPaths | None = None) -> DataSource | None:
    """The first place on this machine that holds the dataset (cheap: only checks that files exist)."""
    info = get_info(dataset)
    if info.name in OWN:
        npz = OWN[info.name][1]
        return DataSource("own", npz) if npz.is_file() else None
    paths = _with_cache(paths, cache_dir)
    for kind, place in _places(info, paths):
        if place.suffix == ".npz":
            if place.is_file():
                return DataSource(kind, place)
        elif place.is_dir() and (source := _idx_folder(kind, place, info)) is not None:
            return source
    return None


def _with_cache(paths: SearchPaths | None, cache_dir: str | os.PathLike | None) -> SearchPaths:
    paths = paths or SearchPaths.default()
    if cache_dir is not None:
        paths = dataclasses.replace(paths, cache_dir=Path(cache_dir))
    return paths


def dataset_status(dataset: str | DatasetInfo, cache_dir: str | os.PathLike | None = None, *,
                   paths: SearchPaths | None = None) -> tuple[bool, str]:
    """(found, where): the folder it would load from, or the cache folder a download would fill."""
    info = get_info(dataset)
    source = locate(info, cache_dir, paths=paths)
    if source is not None:
        return True, str(source)
    return False, str(cast(Path, _with_cache(paths, cache_dir).cache_dir) / info.name)  # (never None after __post_init__)


@dataclass(frozen=True)
class DatasetCheck:
    """What :func:`check_dataset` found: where the dataset is (or would be downloaded to), and why
    it cannot be used (None: it loads)."""

    found: bool
    where: str
    problem: UserError | None = None

    @property
    def usable(self) -> bool:
        return self.found and self.problem is None


_CHECKS: dict[tuple, UserError | None] = {}  # (dataset, files with their mtime and size) -> the check's verdict
_MAX_CHECKS = 32


def _fingerprint(source: DataSource) -> tuple:
    files = source.files or (source.path,)
    stats: list[tuple[str, int | None, int | None]] = []
    for file in files:
        try:
            st = Path(file).stat()
            stats.append((str(file), st.st_mtime_ns, st.st_size))
        except OSError:
            stats.append((str(file), None, None))
    return tuple(stats)


def check_dataset(dataset: str | DatasetInfo, cache_dir: str | os.PathLike | None = None, *,
                  paths: SearchPaths | None = None) -> DatasetCheck:
    """Like :func:`dataset_status`, and the files found are validated as training reads them.

    The verdict is kept per file modification time and size, so asking again (the Home page on
    every visit) costs a few ``stat`` calls until a file changes.
    """
    info = get_info(dataset)
    source = locate(info, cache_dir, paths=paths)
    if source is None:
        return DatasetCheck(False, str(cast(Path, _with_cache(paths, cache_dir).cache_dir) / info.name))
    key = (info, _fingerprint(source))
    if key not in _CHECKS:
        try:
            read_source(source, info)
            verdict = None
        except UserError as exc:
            verdict = exc
        if len(_CHECKS) >= _MAX_CHECKS:
            _CHECKS.clear()
        _CHECKS[key] = verdict
    return DatasetCheck(True, str(source), _CHECKS[key])


# ---------------------------------------------------------------- downloading

def _fetch(url: str, dest: Path, file: DataFile, progress: ProgressCallback | None,
           timeout: float) -> None:
    """Stream one URL into ``dest`` via a temp file; raises OSError/ValueError on any failure."""
    md5, sha = hashlib.md5(), hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else file.size
            done = 0
            if progress:
                progress(file.name, 0, total)
            while chunk := response.read(CHUNK_SIZE):
                out.write(chunk)
                md5.update(chunk)
                sha.update(chunk)
                done += len(chunk)
                if progress:
                    progress(file.name, done, total)
        if length and length.isdigit() and done != int(length):
            raise OSError(f"connection closed after {done} of {length} bytes")
        if md5.hexdigest() != file.md5.lower():
            raise ValueError(f"md5 mismatch (got {md5.hexdigest()})")
        if file.sha256 and sha.hexdigest() != file.sha256.lower():
            raise ValueError(f"sha256 mismatch (got {sha.hexdigest()})")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _answers(url: str, timeout: float) -> str | None:
    """None when the server behind ``url`` answers (any HTTP status), else why not."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None  # it answered (a mirror that refuses HEAD still serves GET)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return str(exc) or type(exc).__name__


def reachable(urls: Sequence[str], timeout: float = PROBE_TIMEOUT_S) -> tuple[bool, list[str], list[str]]:
    """Ask the servers behind ``urls`` at once whether they answer: (whether one did, the urls that failed
    for sure, "url (why)" for each url that failed or did not answer). It returns once one answers or
    all have failed, within about ``timeout`` seconds in all: without a network a download fails in
    seconds instead of waiting out every file's full timeout on every mirror (minutes). A name lookup
    that hangs (it has no timeout of its own) counts as no answer; its thread ends by itself later."""
    results: dict[str, str | None] = {}
    done = threading.Condition()

    def ask(url: str) -> None:
        answer = _answers(url, timeout)
        with done:
            results[url] = answer
            done.notify_all()

    for url in urls:
        threading.Thread(target=ask, args=(url,), name="dlplay-probe", daemon=True).start()
    with done:
        done.wait_for(lambda: len(results) == len(urls) or None in results.values(), timeout=timeout + 0.5)
        answers = dict(results)
    failed = [u for u in urls if answers.get(u) is not None]
    why = [f"{u} ({answers.get(u) or f'no answer within {timeout:g} s'})" for u in urls if answers.get(u) is not None
           or u not in answers]
    return None in answers.values(), failed, why


def _has_checksum(path: Path, file: DataFile) -> bool:
    if not path.is_file():
        return False
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "md5").hexdigest() == file.md5.lower()


def download(dataset: str | DatasetInfo, dest_dir: str | os.PathLike, *,
             mirrors: Sequence[str] | None = None, progress: ProgressCallback | None = None,
             timeout: float = 30) -> Path:
    """Download the four files into ``dest_dir`` (mirrors in turn, checksums verified, atomic
    rename, no partial file left); files already there with the right md5 are kept. The mirrors are
    asked first (:func:`reachable`, seconds): when none answers, it fails at once."""
    info = get_info(dataset)
    mirrors = tuple(mirrors or info.mirrors)
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    errors: list[str] = []
    missing = [file for file in info.files if not _has_checksum(dest / file.name, file)]
    if missing:
        urls = {m.rstrip("/") + "/" + missing[0].name: m for m in mirrors}
        answered, failed, errors = reachable(list(urls), min(timeout, PROBE_TIMEOUT_S))
        mirrors = tuple(m for u, m in urls.items() if u not in failed)  # not asked to the end: tried as usual
        if not answered:
            raise UserError("data.download_failed", title=info.title, files=", ".join(f.name for f in missing),
                            folder=str(dest), urls="; ".join(errors))
    for file in info.files:
        target = dest / file.name
        if _has_checksum(target, file):
            continue
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + file.name
            try:
                _fetch(url, target, file, progress, timeout)
                break
            except (OSError, ValueError, EOFError, http.client.HTTPException) as exc:
                errors.append(f"{url} ({str(exc) or type(exc).__name__})")  # URLError, IncompleteRead…
        else:
            failures.append(file.name)
    if failures:
        raise UserError("data.download_failed", title=info.title, files=", ".join(failures),
                        folder=str(dest), urls="; ".join(errors))
    return dest


_download_files = download  # load_dataset's ``download`` flag shadows the function's name


# ---------------------------------------------------------------- loading

def read_source(source: DataSource, dataset: str | DatasetInfo) -> Dataset:
    """Parse and validate what :func:`locate` found."""
    info = get_info(dataset)
    if not source.files:
        arrays = _read_npz(source.path)
        names = tuple(f"{source.path} [{key}]" for key in NPZ_KEYS)
    else:
        arrays = tuple(parse_idx(p, ndim=3 if "images" in role else 1)
                       for p, role in zip(source.files, ROLES))
        names = tuple(str(p) for p in source.files)
    tensors = {}
    for i, split in ((0, "train"), (2, "test")):
        images, labels = arrays[i], arrays[i + 1]
        _check_split(images, labels, names[i], names[i + 1], info)
        tensors[f"{split}_images"] = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8))
        tensors[f"{split}_labels"] = torch.from_numpy(labels.astype(np.int64))
    return Dataset(name=info.name, info=info, source=str(source.path), source_kind=source.kind,
                   **tensors)


def load_dataset(dataset: str | DatasetInfo, *, download: bool = True,
                 progress: ProgressCallback | None = None,
                 cache_dir: str | os.PathLike | None = None, paths: SearchPaths | None = None,
                 mirrors: Sequence[str] | None = None, timeout: float = 30) -> Dataset:
    """Locate, parse and validate a dataset; download it into the cache when it is nowhere."""
    info = get_info(dataset)
    paths = _with_cache(paths, cache_dir)
    source = locate(info, paths=paths)
    if source is None and info.name in OWN:
        raise UserError("owndata.gone", title=info.title)
    if source is None:
        folder = cast(Path, paths.cache_dir) / info.name  # (never None after __post_init__)
        params = dict(title=info.title, name=info.name, files=", ".join(info.file_names), folder=str(folder),
                      data_dir=_data_dir_hint(info))
        if not download:
            raise UserError("data.not_found", **params)
        try:
            _download_files(info, folder, mirrors=mirrors, progress=progress, timeout=timeout)
        except UserError as exc:
            raise UserError("data.not_found_offline", reason=exc.params.get("urls", ""),
                            **params) from exc
        source = _idx_folder("cache", folder, info)
        assert source is not None
    return read_source(source, info)


def _data_dir_hint(info: DatasetInfo) -> str:
    sep = os.sep
    if info.name == DEFAULT_DATASET:
        return f"$DLPLAY_DATA_DIR{sep}"
    return f"$DLPLAY_DATA_DIR{sep}{info.name}{sep}"

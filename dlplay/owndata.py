"""A learner's own data: a zip of image folders (class = folder name) or a CSV (numeric columns + a label).

Everything is read from the uploaded bytes in memory and checked before anything is written: a zip's
members are never extracted by name (a name with ``..``, an absolute path or a drive letter, a link, an
encrypted member refuses the whole upload), their declared and their actual unpacked sizes are capped
(read in bounded chunks), archives inside the archive are ignored (and said so), images are decoded by
Pillow only (nothing is executed or unpickled). Images become grey 28x28 the way the Draw page prepares a
drawing (dlplay/data/canvas.py), each change noted. The result is split (seeded, stratified) and written as one
``.npz`` (no pickles) into the session's own data folder, ``<cache>/own/<session id>/``, and registered in
the data registry (:func:`dlplay.data.datasets.register_own`): Train, Evaluate and Inside load it like any dataset.

A 2-feature CSV also becomes points of the 2-D playground (:func:`plane_data`); a CSV of 784 pixel
columns (Kaggle's MNIST layout) becomes 28x28 images.
"""
from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import re
import shutil
import stat
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, ImageOps

from dlplay.data import canvas
from dlplay.data.datasets import DataFile, DatasetInfo, default_cache_dir, register_own, unregister_own
from dlplay.errors import UserError
from dlplay.server.guardrails import Limits

MB = 2**20
FRAME = canvas.FRAME  # images become FRAME x FRAME grey
MIN_PER_CLASS = 5
TEST_SHARE = 0.2
SPLIT_SEED = 0
CHUNK = 1 << 16  # bytes read from a zip member at a time
UNPACKED_FACTOR = 10  # the unpacked files may be this many times the upload's size limit in all
MAX_MEMBER_BYTES = canvas.MAX_UPLOAD_BYTES  # one image file, unpacked (as the Draw page takes)
MAX_NAME = 40  # characters kept of a class name
ARCHIVES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".zst", ".lz", ".lzma", ".jar", ".npz")
LABEL_COLUMNS = ("label", "class", "target", "y", "species", "category")
PIXELS = FRAME * FRAME
EXAMPLE_CSV = Path(__file__).with_name("owndata_iris.csv")
EXAMPLE_CLASSES = (0, 1, 7)  # MNIST digits in the example zip
EXAMPLE_PER_CLASS = 60
_SAFE_ID = re.compile(r"[^A-Za-z0-9_-]")
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class Note:
    """What was changed or left out, as a translation key and its parameters."""

    key: str
    params: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class OwnData:
    """What was read: images uint8 [N, 28, 28] (or features float32 [N, F]), labels int64 [N], the class
    names (label i = classes[i]) and the notes of what changed. ``kind``: "images" or "table"."""

    kind: str
    title: str
    classes: tuple[str, ...]
    labels: np.ndarray
    images: np.ndarray | None = None
    features: np.ndarray | None = None
    columns: tuple[str, ...] = ()
    notes: tuple[Note, ...] = ()

    @property
    def counts(self) -> list[int]:
        return np.bincount(self.labels, minlength=len(self.classes)).tolist()

    @property
    def trainable(self) -> bool:
        """Train, Evaluate and Inside take it (28x28 images)."""
        return self.images is not None

    @property
    def plane_ready(self) -> bool:
        """The 2-D playground takes it (two numeric columns)."""
        return self.features is not None and self.features.shape[1] == 2


@dataclass(frozen=True)
class OwnLimits:
    """The guardrails that apply to a learner's own data (shown before the upload)."""

    max_upload_mb: float
    max_images: int
    max_classes: int
    max_rows: int

    @classmethod
    def from_limits(cls, limits: Limits) -> OwnLimits:
        return cls(limits.max_upload_mb, limits.max_own_images, limits.max_own_classes, limits.max_own_rows)

    @property
    def max_bytes(self) -> int:
        return int(self.max_upload_mb * MB)

    @property
    def max_unpacked(self) -> int:
        return UNPACKED_FACTOR * self.max_bytes


def _mb(n: float) -> str:
    return f"{n / MB:,.1f}"


# ---------------------------------------------------------------- reading an upload
def read_upload(data: bytes, filename: str, limits: OwnLimits) -> OwnData:
    """A zip of image folders or a CSV, by content (a zip starts with ``PK``); UserError otherwise."""
    if len(data) > limits.max_bytes:
        raise UserError("owndata.too_large", size=_mb(len(data)), limit=_mb(limits.max_bytes))
    if not data:
        raise UserError("owndata.empty_file", file=filename)
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return read_zip(data, filename, limits)
    if filename.lower().endswith((".csv", ".txt")):
        return read_csv(data, filename, limits)
    raise UserError("owndata.not_zip_or_csv", file=filename)


def _check_name(name: str) -> None:
    """Refuse a member name that could point outside a folder (it is never used as a path here)."""
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or _DRIVE.match(name) or ".." in parts or "\x00" in name:
        raise UserError("owndata.unsafe_name", name=name[:120])


def _is_link(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16
    return info.create_system == 3 and stat.S_ISLNK(mode)


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes:
    """The member's bytes, read in chunks; a member that unpacks beyond its cap or ``budget`` is a bomb."""
    cap = min(MAX_MEMBER_BYTES, budget)
    parts, size = [], 0
    try:
        with archive.open(info) as handle:
            while chunk := handle.read(CHUNK):
                size += len(chunk)
                if size > cap:
                    raise UserError("owndata.zip_bomb", name=info.filename[:120], limit=_mb(cap))
                parts.append(chunk)
    except UserError:
        raise
    except RuntimeError as exc:  # an encrypted member
        raise UserError("owndata.encrypted", name=info.filename[:120]) from exc
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise UserError("owndata.bad_zip", file=info.filename[:120], detail=str(exc) or type(exc).__name__) from exc
    return b"".join(parts)


def _class_paths(names: list[str]) -> list[tuple[str, str]]:
    """(class, member name) for files inside a class folder; one common top folder is skipped."""
    split = [PurePosixPath(n.replace("\\", "/")).parts for n in names]
    tops = {p[0] for p in split if len(p) > 1}
    strip = len(tops) == 1 and all(len(p) >= 3 for p in split)
    out = []
    for name, parts in zip(names, split):
        parts = parts[1:] if strip else parts
        if len(parts) >= 2:
            out.append((parts[0], name))
    return out


def _decode(raw: bytes, name: str) -> Image.Image | None:
    """The image Pillow reads from ``raw`` (None: not an image); a decompression bomb is refused."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw))
            width, height = image.size
            if width * height > canvas.MAX_UPLOAD_PIXELS:
                raise UserError("owndata.image_too_big", name=name[:120], pixels=f"{width * height:,}",
                                limit=f"{canvas.MAX_UPLOAD_PIXELS:,}")
            image.load()
            return ImageOps.exif_transpose(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UserError("owndata.image_too_big", name=name[:120], pixels="?",
                        limit=f"{canvas.MAX_UPLOAD_PIXELS:,}") from None
    except UserError:
        raise
    except Exception:  # noqa: BLE001 - whatever Pillow raises on bytes that are no image it reads
        return None


def to_frame(image: Image.Image) -> tuple[np.ndarray, set[str]]:
    """A grey FRAME x FRAME uint8 image and what was changed. A grey image of that size is kept as it is
    (MNIST's own); any other is prepared as the Draw page prepares a drawing (dlplay/data/canvas.py: grey,
    light ink on dark, cropped to the ink, scaled into 20 px, centred), or scaled whole when it shows no ink."""
    changes: set[str] = set()
    if image.mode not in ("L", "1"):
        changes.add("colour")
    if image.size == (FRAME, FRAME) and image.mode == "L":
        return np.asarray(image, dtype=np.uint8).copy(), changes
    if image.size != (FRAME, FRAME):
        changes.add("size")
    gray = canvas._gray(image)
    done = canvas.preprocess(gray)
    if done.image28 is not None:
        if done.inverted:
            changes.add("inverted")
        return done.image28, changes
    changes.add("no_ink")
    whole = Image.fromarray(np.round(gray * 255).astype(np.uint8)).resize((FRAME, FRAME), Image.Resampling.BOX)
    return np.asarray(whole, dtype=np.uint8).copy(), changes


def read_zip(data: bytes, filename: str, limits: OwnLimits) -> OwnData:
    """A zip of image folders (class = folder name) -> images, labels, class names and notes."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise UserError("owndata.bad_zip", file=filename, detail=str(exc) or type(exc).__name__) from exc
    files: list[zipfile.ZipInfo] = []
    nested: list[str] = []
    hidden = 0
    for info in members:
        _check_name(info.filename)
        if _is_link(info):
            raise UserError("owndata.symlink", name=info.filename[:120])
        if info.is_dir():
            continue
        parts = PurePosixPath(info.filename.replace("\\", "/")).parts
        if parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts):
            hidden += 1
            continue
        if info.filename.lower().endswith(ARCHIVES):
            nested.append(info.filename)
            continue
        files.append(info)
    declared = sum(i.file_size for i in files)
    if declared > limits.max_unpacked:
        raise UserError("owndata.zip_bomb", name=filename, limit=_mb(limits.max_unpacked))
    by_name = {i.filename: i for i in files}
    placed = _class_paths([i.filename for i in files])
    loose = len(files) - len(placed)
    if len(placed) > limits.max_images:
        raise UserError("owndata.too_many_images", n=f"{len(placed):,}", limit=f"{limits.max_images:,}")
    folders = sorted({c for c, _ in placed})
    if len(folders) > limits.max_classes:
        raise UserError("owndata.too_many_classes", n=len(folders), limit=limits.max_classes)
    budget = limits.max_unpacked
    images: list[np.ndarray] = []
    labels: list[str] = []
    skipped: list[str] = []
    changes: dict[str, int] = {}
    sizes: set[tuple[int, int]] = set()
    modes: set[str] = set()
    for cls, name in placed:
        raw = _read_member(archive, by_name[name], budget)
        budget -= len(raw)
        image = _decode(raw, name)
        if image is None:
            skipped.append(name)
            continue
        sizes.add(image.size)
        modes.add(image.mode)
        frame, changed = to_frame(image)
        for c in changed:
            changes[c] = changes.get(c, 0) + 1
        images.append(frame)
        labels.append(cls)
    classes = tuple(sorted(set(labels), key=_label_order))
    if not images:
        raise UserError("owndata.no_images", file=filename)
    if len(classes) < 2:
        raise UserError("owndata.one_class", name=classes[0][:MAX_NAME])
    counts = {c: labels.count(c) for c in classes}
    small = [c for c in classes if counts[c] < MIN_PER_CLASS]
    if small:
        raise UserError("owndata.small_class", name=small[0][:MAX_NAME], n=counts[small[0]], min=MIN_PER_CLASS)
    notes: list[Note] = []
    if changes.get("size"):
        shown = ", ".join(f"{w}×{h}" for w, h in sorted(sizes)[:4]) + (" …" if len(sizes) > 4 else "")
        notes.append(Note("owndata.note_resized", {"n": changes["size"], "sizes": shown, "side": FRAME}))
    if changes.get("colour"):
        shown = ", ".join(sorted(m for m in modes if m not in ("L", "1")))
        notes.append(Note("owndata.note_grey", {"n": changes["colour"], "modes": shown}))
    if changes.get("inverted"):
        notes.append(Note("owndata.note_inverted", {"n": changes["inverted"]}))
    if changes.get("no_ink"):
        notes.append(Note("owndata.note_no_ink", {"n": changes["no_ink"]}))
    if nested:
        notes.append(Note("owndata.note_nested", {"n": len(nested), "names": ", ".join(nested[:3])}))
    if skipped:
        notes.append(Note("owndata.note_not_images", {"n": len(skipped), "names": ", ".join(skipped[:3])}))
    if loose:
        notes.append(Note("owndata.note_loose", {"n": loose}))
    if hidden:
        notes.append(Note("owndata.note_hidden", {"n": hidden}))
    index = {c: i for i, c in enumerate(classes)}
    return OwnData("images", _title(filename), tuple(c[:MAX_NAME] for c in classes),
                   np.array([index[c] for c in labels], dtype=np.int64), images=np.stack(images), notes=tuple(notes))


def _title(filename: str) -> str:
    stem = PurePosixPath(filename.replace("\\", "/")).name.rsplit(".", 1)[0]
    return (stem or "data")[:MAX_NAME]


def read_csv(data: bytes, filename: str, limits: OwnLimits) -> OwnData:
    """A CSV with a header row, numeric columns and one label column (named label/class/target/y/species/
    category, else the last) -> features, labels, class names. Each bad cell is named by row and column."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UserError("owndata.csv_not_utf8", row=line, byte=exc.start) from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise UserError("owndata.empty_file", file=filename) from None
    except csv.Error as exc:
        raise UserError("owndata.csv_bad", row=1, detail=str(exc)) from exc
    if len(header) < 2:
        raise UserError("owndata.csv_columns", n=len(header))
    lowered = [h.lower() for h in header]
    label_at = next((lowered.index(n) for n in LABEL_COLUMNS if n in lowered), len(header) - 1)
    columns = tuple(h for i, h in enumerate(header) if i != label_at)
    rows: list[list[float]] = []
    names: list[str] = []
    try:
        for number, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(rows) >= limits.max_rows:
                raise UserError("owndata.too_many_rows", limit=f"{limits.max_rows:,}")
            if len(row) != len(header):
                raise UserError("owndata.csv_ragged", row=number, n=len(row), expected=len(header))
            label = row[label_at].strip()
            if not label:
                raise UserError("owndata.csv_missing_label", row=number, column=header[label_at])
            values = []
            for i, cell in enumerate(row):
                if i == label_at:
                    continue
                cell = cell.strip()
                if not cell:
                    raise UserError("owndata.csv_missing_value", row=number, column=header[i])
                try:
                    value = float(cell)
                except ValueError:
                    raise UserError("owndata.csv_not_number", row=number, column=header[i], value=cell[:30]) from None
                if not math.isfinite(value):
                    raise UserError("owndata.csv_not_finite", row=number, column=header[i], value=cell[:30])
                values.append(value)
            rows.append(values)
            names.append(label[:MAX_NAME])
    except csv.Error as exc:
        raise UserError("owndata.csv_bad", row=reader.line_num, detail=str(exc)) from exc
    if not rows:
        raise UserError("owndata.empty_file", file=filename)
    classes = tuple(sorted(set(names), key=_label_order))
    if len(classes) < 2:
        raise UserError("owndata.one_class", name=classes[0])
    if len(classes) > limits.max_classes:
        raise UserError("owndata.too_many_classes", n=len(classes), limit=limits.max_classes)
    counts = {c: names.count(c) for c in classes}
    small = [c for c in classes if counts[c] < MIN_PER_CLASS]
    if small:
        raise UserError("owndata.small_class", name=small[0], n=counts[small[0]], min=MIN_PER_CLASS)
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[n] for n in names], dtype=np.int64)
    features = np.array(rows, dtype=np.float64)
    notes: list[Note] = [Note("owndata.note_label_column", {"column": header[label_at]})]
    images = None
    if features.shape[1] == PIXELS:  # Kaggle's MNIST layout: 784 pixels per row
        scale = 255.0 if features.max() > 1.0 else 1.0
        if features.min() < 0 or features.max() > 255:
            raise UserError("owndata.csv_pixel_range")
        images = np.round(features / scale * 255.0).astype(np.uint8).reshape(-1, FRAME, FRAME)
        notes.append(Note("owndata.note_pixels", {"side": FRAME}))
    return OwnData("table", _title(filename), classes, labels, images=images,
                   features=features.astype(np.float32), columns=columns, notes=tuple(notes))


def _label_order(name: str) -> tuple[int, float, str]:
    """Numbers by value (2 before 10), then words."""
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


# ---------------------------------------------------------------- splitting, storing, registering
def split(labels: np.ndarray, test_share: float = TEST_SHARE, seed: int = SPLIT_SEED) -> np.ndarray:
    """A boolean mask of the test examples: ``test_share`` of each class (at least one, never all), the
    same for the same seed."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        take = min(max(1, round(len(idx) * test_share)), len(idx) - 1)
        test[idx[:take]] = True
    return test


def session_folder(session_id: str, root: Path | None = None) -> Path:
    """``<cache>/own/<session id>/``: the one place a session's own data is written."""
    clean = _SAFE_ID.sub("", session_id)[:64] or "anonymous"
    return (root if root is not None else default_cache_dir() / "own") / clean


def register(own: OwnData, session_id: str, root: Path | None = None) -> DatasetInfo:
    """Split, write ``<session folder>/<name>.npz`` (no pickles) and add the dataset to the registry."""
    if own.images is None:
        raise UserError("owndata.not_images", n=len(own.columns), pixels=PIXELS)
    images, labels = own.images, own.labels
    test = split(labels)
    digest = hashlib.sha256(images.tobytes() + labels.tobytes() + "\0".join(own.classes).encode()).hexdigest()[:10]
    folder = session_folder(session_id, root)
    name = f"own-{folder.name[:12]}-{digest}"
    folder.mkdir(parents=True, exist_ok=True)
    npz = folder / f"{name}.npz"
    tmp = folder / f".{name}.tmp.npz"
    np.savez(tmp, x_train=images[~test], y_train=labels[~test], x_test=images[test], y_test=labels[test])
    os.replace(tmp, npz)
    scaled = images[~test].astype(np.float64) / 255.0
    info = DatasetInfo(
        name=name, title=own.title,
        files=tuple(DataFile(k, "") for k in ("x_train", "y_train", "x_test", "y_test")),  # type: ignore[arg-type]
        mirrors=(), classes=own.classes, mean=float(scaled.mean()), std=max(float(scaled.std()), 1e-3),
        credit="")
    register_own(info, npz)
    return info


def forget(session_id: str, root: Path | None = None) -> None:
    """Remove the session's own data folder and its datasets from the registry (the session ended)."""
    from dlplay.data.datasets import OWN

    folder = session_folder(session_id, root)
    for name, (_, npz) in list(OWN.items()):
        if npz.parent == folder:
            unregister_own(name)
    shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- the 2-D playground
def plane_data(own: OwnData, test_ratio: float = 0.5, seed: int = 0):  # -> plane.datasets.PlaneData
    """A 2-feature table as points of the 2-D playground: each column scaled to [-5, 5]."""
    from dlplay.plane import datasets as plane

    rows = np.array(plane_points(own), dtype=np.float64).reshape(-1, 3)
    return plane.from_arrays(rows[:, :2], rows[:, 2], plane.CLASSIFY, test_ratio, seed, name="own",
                             classes=len(own.classes))


def plane_points(own: OwnData) -> list[tuple[float, float, int]]:
    """A 2-feature table as the 2-D playground's points, rows (x, y, class), each column scaled to [-5, 5]."""
    if not own.plane_ready or own.features is None:
        raise UserError("owndata.not_two_columns", n=len(own.columns))
    xy = own.features.astype(np.float64)
    low, high = xy.min(axis=0), xy.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    scaled = (xy - low) / span * 10.0 - 5.0
    return [(round(float(x), 4), round(float(y), 4), int(c)) for (x, y), c in zip(scaled, own.labels)]


# ---------------------------------------------------------------- built-in examples
def example_zip(per_class: int = EXAMPLE_PER_CLASS, digits: tuple[int, ...] = EXAMPLE_CLASSES) -> bytes:
    """A zip of image folders made now, in memory, from real MNIST test digits: one folder per digit
    (``digits/7/…png``), ``per_class`` PNGs each. Needs MNIST on this machine (or a download)."""
    from dlplay.data.datasets import load_dataset

    mnist = load_dataset("mnist")
    images, labels = mnist.test_images.numpy(), mnist.test_labels.numpy()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for digit in digits:
            for k, i in enumerate(np.flatnonzero(labels == digit)[:per_class]):
                png = io.BytesIO()
                Image.fromarray(images[i]).save(png, format="PNG")
                archive.writestr(f"digits/{digit}/{k:03d}.png", png.getvalue())
    return out.getvalue()


def example_csv() -> bytes:
    """The example CSV: Fisher's iris flowers (1936), petal length and width, 150 rows, 3 species."""
    return EXAMPLE_CSV.read_bytes()

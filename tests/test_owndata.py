"""A learner's own data (dlplay/owndata.py): every bad input gets its message and writes nothing; the
examples and a real upload become a dataset of the registry that loads like MNIST."""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dlplay import owndata, settings
from dlplay.data import datasets as data
from dlplay.errors import UserError
from dlplay.i18n import translate
from dlplay.owndata import OwnLimits

LIMITS = OwnLimits(max_upload_mb=5, max_images=2000, max_classes=5, max_rows=1000)


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """The app's cache and the working folder inside tmp_path: every file written is seen by ``files``."""
    cache, work = tmp_path / "cache", tmp_path / "work"
    cache.mkdir()
    work.mkdir()
    monkeypatch.setenv("DLPLAY_CACHE_DIR", str(cache))
    monkeypatch.chdir(work)
    return tmp_path


def files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()}


@pytest.fixture(scope="module")
def mnist():
    return data.load_dataset("mnist", download=False)


def png(array: np.ndarray, mode: str | None = None) -> bytes:
    out = io.BytesIO()
    image = Image.fromarray(array)
    (image.convert(mode) if mode else image).save(out, format="PNG")
    return out.getvalue()


def make_zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, raw in members.items():
            archive.writestr(name, raw)
    return out.getvalue()


def digit_members(mnist, digits=(0, 1, 7), per_class=6, folder="digits") -> dict[str, bytes]:
    images, labels = mnist.test_images.numpy(), mnist.test_labels.numpy()
    members = {}
    for d in digits:
        for k, i in enumerate(np.flatnonzero(labels == d)[:per_class]):
            members[f"{folder}/d{d}/{k}.png"] = png(images[i])
    return members


def refused(raw: bytes, name: str = "upload.zip", limits: OwnLimits = LIMITS) -> UserError:
    with pytest.raises(UserError) as caught:
        owndata.read_upload(raw, name, limits)
    exc = caught.value
    assert translate(exc.key, "en", **exc.params) != exc.key  # a real message in both languages
    assert translate(exc.key, "zh", **exc.params) != exc.key
    return exc


# ---------------------------------------------------------------- bad input: each its message, nothing written
def test_not_a_zip_nor_csv(sandbox):
    before = files(sandbox)
    assert refused(b"\x89PNG not an archive", "photo.png").key == "owndata.not_zip_or_csv"
    assert refused(b"", "empty.zip").key == "owndata.empty_file"
    assert files(sandbox) == before


def test_damaged_zip(sandbox):
    assert refused(b"PK\x03\x04" + b"\x00" * 40).key == "owndata.bad_zip"


def test_too_large_upload():
    exc = refused(b"PK\x03\x04" + b"\x00" * (2 * 2**20), limits=OwnLimits(1, 100, 5, 100))
    assert exc.key == "owndata.too_large"
    assert exc.params["limit"] == "1.0"


def test_zip_bomb_by_declared_size(sandbox, mnist):
    members = digit_members(mnist)
    members["digits/d0/bomb.png"] = b"\x00" * (60 * 2**20)  # 60 MB of zeros: about 60 KB packed
    raw = make_zip(members)
    assert len(raw) < 2**20
    before = files(sandbox)
    exc = refused(raw, limits=OwnLimits(1, 100, 5, 100))  # unpacked cap: 10 x 1 MB
    assert exc.key == "owndata.zip_bomb"
    assert exc.params["limit"] == "10.0"
    assert files(sandbox) == before


def test_zip_bomb_by_actual_size_read_in_chunks(sandbox, mnist):
    members = digit_members(mnist)
    members["digits/d1/huge.png"] = b"\x00" * (owndata.MAX_MEMBER_BYTES + 1)  # declared total under the cap
    exc = refused(make_zip(members), limits=OwnLimits(2, 100, 5, 100))
    assert exc.key == "owndata.zip_bomb"
    assert exc.params["name"] == "digits/d1/huge.png"


def test_zip_whose_header_lies_about_sizes(sandbox, mnist):
    members = digit_members(mnist)
    members["digits/d7/liar.png"] = b"\x00" * 200_000
    raw = bytearray(make_zip(members))
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as archive:
        info = archive.getinfo("digits/d7/liar.png")
    central = raw.rfind(b"PK\x01\x02", 0, raw.rfind(b"digits/d7/liar.png"))  # its central directory entry
    raw[central + 24: central + 28] = (1000).to_bytes(4, "little")  # declares 1000 bytes unpacked
    assert info.file_size == 200_000
    exc = refused(bytes(raw))  # zipfile stops at the declared size and the checksum fails
    assert exc.key == "owndata.bad_zip"


@pytest.mark.parametrize("name", ["../evil.png", "digits/../../evil.png", "/etc/evil.png", "C:/evil.png",
                                  "c:evil.png", "digits\\..\\..\\evil.png", "\\\\server\\share\\evil.png"])
def test_path_traversal_names_refused_and_nothing_written(sandbox, mnist, name):
    members = digit_members(mnist)
    members[name] = png(np.zeros((28, 28), np.uint8))
    before = files(sandbox)
    exc = refused(make_zip(members))
    assert exc.key == "owndata.unsafe_name"
    assert exc.params["name"] == name
    assert files(sandbox) == before
    assert not list(sandbox.parent.glob("evil.png"))
    assert not Path("/etc/evil.png").exists()


def test_symlink_member_refused(sandbox, mnist):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, raw in digit_members(mnist).items():
            archive.writestr(name, raw)
        link = zipfile.ZipInfo("digits/d0/link.png")
        link.create_system = 3
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "/etc/passwd")
    exc = refused(out.getvalue())
    assert exc.key == "owndata.symlink"
    assert exc.params["name"] == "digits/d0/link.png"


def test_nested_archives_are_ignored_and_said_so(mnist):
    members = digit_members(mnist)
    members["digits/d0/more.zip"] = make_zip({"x/y.png": png(np.zeros((28, 28), np.uint8))})
    members["digits/d1/old.tar.gz"] = b"\x1f\x8b not really"
    members["digits/d1/readme.txt"] = b"notes"
    members["__MACOSX/digits/._0.png"] = b"junk"
    own = owndata.read_upload(make_zip(members), "digits.zip", LIMITS)
    keys = {n.key: n.params for n in own.notes}
    assert keys["owndata.note_nested"]["n"] == 2
    assert keys["owndata.note_not_images"]["names"] == "digits/d1/readme.txt"
    assert keys["owndata.note_hidden"]["n"] == 1
    assert own.counts == [6, 6, 6]
    assert own.classes == ("d0", "d1", "d7")


def test_mixed_sizes_and_colour_modes_converted_and_noted(mnist):
    images = mnist.test_images.numpy()
    members = {}
    for k in range(6):
        digit = images[k]
        big = np.asarray(Image.fromarray(digit).resize((64, 64)))
        members[f"a/{k}.png"] = png(digit)  # grey 28x28: kept as it is
        members[f"b/{k}.png"] = png(np.stack([255 - big] * 3, axis=-1))  # RGB 64x64, dark on light
        members[f"c/{k}.png"] = png(np.asarray(Image.fromarray(digit).resize((32, 48))), "RGBA")
    own = owndata.read_upload(make_zip(members), "mixed.zip", LIMITS)
    keys = {n.key: n.params for n in own.notes}
    assert keys["owndata.note_resized"]["n"] == 12
    assert "32×48" in str(keys["owndata.note_resized"]["sizes"])
    assert "64×64" in str(keys["owndata.note_resized"]["sizes"])
    assert keys["owndata.note_grey"]["n"] == 12
    assert keys["owndata.note_grey"]["modes"] == "RGB, RGBA"
    assert keys["owndata.note_inverted"]["n"] == 6
    assert own.images is not None
    assert own.images.shape == (18, 28, 28)
    assert own.images.dtype == np.uint8
    np.testing.assert_array_equal(own.images[own.labels == 0][0], images[0])
    light_on_dark = own.images[own.labels == 1]
    assert light_on_dark[:, 0, :].mean() < 10
    assert light_on_dark.mean() > 10  # background dark, ink light


def test_one_class_refused(mnist):
    exc = refused(make_zip(digit_members(mnist, digits=(3,))))
    assert exc.key == "owndata.one_class"
    assert exc.params["name"] == "d3"


def test_class_with_fewer_than_five_images(mnist):
    members = digit_members(mnist, digits=(0, 1))
    members.update(digit_members(mnist, digits=(7,), per_class=4))
    exc = refused(make_zip(members))
    assert exc.key == "owndata.small_class"
    assert exc.params == {"name": "d7", "n": 4, "min": 5}


def test_more_classes_than_the_limit(mnist):
    exc = refused(make_zip(digit_members(mnist, digits=(0, 1, 2, 3)) ), limits=OwnLimits(5, 100, 3, 100))
    assert exc.key == "owndata.too_many_classes"
    assert exc.params == {"n": 4, "limit": 3}


def test_more_images_than_the_limit(mnist):
    exc = refused(make_zip(digit_members(mnist, per_class=10)), limits=OwnLimits(5, 20, 5, 100))
    assert exc.key == "owndata.too_many_images"
    assert exc.params["n"] == "30"


def test_no_images_in_class_folders():
    exc = refused(make_zip({"a/x.txt": b"1", "b/y.txt": b"2"}))
    assert exc.key == "owndata.no_images"


def csv_bytes(rows: list[str]) -> bytes:
    return ("x1,x2,label\n" + "\n".join(rows) + "\n").encode()


def good_rows(n: int = 5) -> list[str]:
    return [f"{i},{i * 0.5},a" for i in range(n)] + [f"{i},{-i},b" for i in range(n)]


def test_csv_text_in_a_numeric_column_names_row_and_column(sandbox):
    rows = good_rows()
    rows[3] = "3,three,a"
    before = files(sandbox)
    exc = refused(csv_bytes(rows), "table.csv")
    assert exc.key == "owndata.csv_not_number"
    assert exc.params == {"row": 5, "column": "x2", "value": "three"}
    assert "Row 5" in exc.message("en")
    assert "x2" in exc.message("zh")
    assert files(sandbox) == before


def test_csv_missing_label_and_missing_value():
    rows = good_rows()
    rows[0] = "0,0,"
    exc = refused(csv_bytes(rows), "table.csv")
    assert exc.key == "owndata.csv_missing_label"
    assert exc.params == {"row": 2, "column": "label"}
    rows = good_rows()
    rows[6] = ",1,b"
    exc = refused(csv_bytes(rows), "table.csv")
    assert exc.key == "owndata.csv_missing_value"
    assert exc.params == {"row": 8, "column": "x1"}


@pytest.mark.parametrize("cell", ["nan", "NaN", "inf", "-Infinity", "1e999"])
def test_csv_nan_and_inf(cell):
    rows = good_rows()
    rows[2] = f"{cell},1,a"
    exc = refused(csv_bytes(rows), "table.csv")
    assert exc.key == "owndata.csv_not_finite"
    assert exc.params["row"] == 4
    assert exc.params["column"] == "x1"


def test_csv_a_million_rows_refused_at_the_limit():
    raw = b"x1,x2,label\n" + b"1,2,a\n3,4,b\n" * 500_000
    exc = refused(raw, "big.csv", limits=OwnLimits(50, 100, 5, 100_000))
    assert exc.key == "owndata.too_many_rows"
    assert exc.params["limit"] == "100,000"


def test_csv_not_utf8():
    raw = csv_bytes(good_rows()[:4]) + "5,5,caf\u00e9\n".encode("latin-1") + csv_bytes(good_rows())[12:]
    exc = refused(raw, "table.csv")
    assert exc.key == "owndata.csv_not_utf8"
    assert exc.params["row"] == 6


def test_csv_ragged_row_and_one_class():
    rows = good_rows()
    rows[1] = "1,2,3,a"
    assert refused(csv_bytes(rows), "t.csv").key == "owndata.csv_ragged"
    assert refused(csv_bytes([f"{i},{i},a" for i in range(9)]), "t.csv").key == "owndata.one_class"


# ---------------------------------------------------------------- what works
def test_example_zip_loads_as_a_dataset_of_the_registry(sandbox):
    raw = owndata.example_zip()
    own = owndata.read_upload(raw, "example.zip", LIMITS)
    assert own.classes == ("0", "1", "7")
    assert own.counts == [60, 60, 60]
    assert own.notes == ()  # MNIST's own PNGs: nothing to change
    before = files(sandbox)
    info = owndata.register(own, "session-A")
    folder = owndata.session_folder("session-A")
    assert folder == sandbox / "cache" / "own" / "session-A"
    assert {p for p in files(sandbox) - before} == {folder / f"{info.name}.npz"}
    loaded = data.load_dataset(info.name, download=False)
    assert loaded.sizes == {"train": 144, "test": 36}  # 20 % of each class held out
    assert np.bincount(loaded.test_labels.numpy()).tolist() == [12, 12, 12]
    assert data.get_info(info.name).classes == ("0", "1", "7")
    assert data.class_label(info.name, 2) == "7"
    again = owndata.register(owndata.read_upload(raw, "example.zip", LIMITS), "session-A")
    assert again.name == info.name  # the same data, the same name and split
    owndata.forget("session-A")
    assert not folder.exists()
    assert info.name not in data.OWN
    with pytest.raises(UserError) as caught:
        data.get_info(info.name)
    assert caught.value.key == "data.unknown_dataset"


def test_session_id_cannot_leave_the_own_folder(sandbox):
    folder = owndata.session_folder("../../etc")
    assert folder.parent == sandbox / "cache" / "own"
    assert folder.name == "etc"


def test_settings_table_offers_the_dataset_and_the_model_has_its_classes(sandbox, mnist):
    own = owndata.read_upload(make_zip(digit_members(mnist)), "three.zip", LIMITS)
    info = owndata.register(own, "session-B")
    try:
        with pytest.raises(UserError):
            settings.SETTINGS["dataset"].validate(info.name + "x")
        settings.add_choice("dataset", info.name)
        assert settings.SETTINGS["dataset"].validate(info.name) == info.name
        spec, config = settings.to_spec_and_config({"dataset": info.name})
        assert spec.num_classes == 3
        assert config.dataset == info.name
        assert settings.to_spec_and_config({"dataset": "mnist"})[0].num_classes == 10
    finally:
        owndata.forget("session-B")


def test_example_csv_loads_and_opens_in_the_2d_playground():
    own = owndata.read_upload(owndata.example_csv(), "iris.csv", LIMITS)
    assert own.kind == "table"
    assert own.columns == ("petal_length_cm", "petal_width_cm")
    assert own.classes == ("setosa", "versicolor", "virginica")
    assert own.counts == [50, 50, 50]
    assert own.plane_ready
    assert not own.trainable
    assert os.path.getsize(owndata.EXAMPLE_CSV) < 50_000
    points = owndata.plane_data(own, test_ratio=0.2, seed=1)
    assert points.classes == 3
    assert len(points.x_train) + len(points.x_test) == 150
    assert np.abs(np.concatenate([points.x_train, points.x_test])).max() <= 5.0 + 1e-6
    with pytest.raises(UserError) as caught:
        owndata.register(own, "session-C")
    assert caught.value.key == "owndata.not_images"


def test_csv_of_784_pixel_columns_is_images(mnist):
    images, labels = mnist.test_images.numpy()[:30], mnist.test_labels.numpy()[:30]
    header = "label," + ",".join(f"pixel{i}" for i in range(784))
    lines = [header] + [f"{y}," + ",".join(map(str, x.reshape(-1))) for x, y in zip(images, labels)]
    keep = np.isin(labels, [l for l in np.unique(labels) if (labels == l).sum() >= 5])
    lines = [header] + [line for line, k in zip(lines[1:], keep) if k]
    own = owndata.read_upload("\n".join(lines).encode(), "kaggle.csv", LIMITS)
    assert own.trainable
    assert own.images is not None
    np.testing.assert_array_equal(own.images, images[keep])
    assert [int(c) for c in own.classes] == sorted({int(v) for v in labels[keep]})

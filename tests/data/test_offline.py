"""The offline datasets of the default config: digits, lfw_faces, fashion_mnist, font_digits."""

from __future__ import annotations

import numpy as np
import pytest
from datafixtures import GREYS, build_fashion_mnist_debian

import greenpath.data.offline as offline
from greenpath.data import (
    FASHION_MNIST_DEBIAN_DIR,
    DataError,
    ensure_fashion_mnist_raw,
    load_prepared,
    prepare_dataset,
)


def _prep(name, tmp_path, **kw):
    args = {"image_size": 8, "channels": 1, **kw}
    return prepare_dataset(
        name, data_root=tmp_path / "data", out_path=tmp_path / f"{name}.npz", **args
    )


def test_digits_sizes_scaling_and_split(tmp_path) -> None:
    ds = _prep("digits", tmp_path)
    # 1797 images, no official split: round(1797 * 0.2) = 359 validation images.
    assert (ds.train_size, ds.val_size) == (1438, 359)
    assert ds.class_names == [str(d) for d in range(10)]
    assert ds.x_train.shape == (1438, 8, 8, 1) and ds.y_train.dtype == np.int64
    # Grey levels 0..16 -> round(v * 255 / 16): 16 -> 255, 5 -> 80 (79.69), 13 -> 207 (207.19).
    values = set(np.unique(np.concatenate([ds.x_train.ravel(), ds.x_val.ravel()])).tolist())
    assert {0, 80, 207, 255} <= values
    assert values <= {round(v * 255 / 16) for v in range(17)}
    assert ds.source == "sklearn.datasets.load_digits" and not ds.synthetic


def test_digits_first_image_pixels(tmp_path) -> None:
    from sklearn.datasets import load_digits

    ds = _prep("digits", tmp_path)
    first = load_digits().images[0]  # a zero; row 0 is [0, 0, 5, 13, 9, 1, 0, 0]
    assert first[0].tolist() == [0, 0, 5, 13, 9, 1, 0, 0]
    want = np.array([0, 0, 80, 207, 143, 16, 0, 0], dtype=np.uint8)  # round(v * 255 / 16)
    rows = np.concatenate([ds.x_train, ds.x_val])[:, 0, :, 0]
    assert (rows == want).all(axis=1).any()


def test_lfw_faces_classes_and_stratified_split(tmp_path) -> None:
    ds = _prep("lfw_faces", tmp_path, image_size=25, channels=3)
    assert ds.class_names == ["face", "non_face"]
    # skimage: first 100 faces, last 100 non-faces; 20 % stratified -> 20 + 20 in val.
    assert np.bincount(ds.y_train).tolist() == [80, 80]
    assert np.bincount(ds.y_val).tolist() == [20, 20]
    assert ds.x_train.shape == (160, 25, 25, 3)
    # grey source repeated into three equal channels
    assert (ds.x_train[..., 0] == ds.x_train[..., 2]).all()


def test_font_digits_synthetic_deterministic(tmp_path) -> None:
    a = _prep("font_digits", tmp_path, seed=5, options={"per_class": 5})
    b = prepare_dataset(
        "font_digits", data_root=tmp_path, out_path=tmp_path / "b.npz", image_size=8, channels=1, seed=5,
        options={"per_class": 5},
    )  # fmt: skip
    c = prepare_dataset(
        "font_digits", data_root=tmp_path, out_path=tmp_path / "c.npz", image_size=8, channels=1, seed=6,
        options={"per_class": 5},
    )  # fmt: skip
    assert a.synthetic and a.source == "synthetic:matplotlib-fonts"
    assert (a.train_size, a.val_size) == (40, 10)
    assert np.bincount(a.y_val).tolist() == [1] * 10
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, c.x_train)
    assert load_prepared(tmp_path / "font_digits.npz").synthetic is True


def test_font_digits_rejects_unknown_option(tmp_path) -> None:
    with pytest.raises(DataError, match=r"unknown option\(s\) \['per_klass'\].*per_class"):
        _prep("font_digits", tmp_path, options={"per_klass": 5})


def test_fashion_mnist_from_debian_layout(tmp_path, monkeypatch) -> None:
    debian = tmp_path / "usr_share_datasets_fashion-mnist"
    info = build_fashion_mnist_debian(debian)
    monkeypatch.setattr(offline, "FASHION_MNIST_DEBIAN_DIR", debian)
    ds = _prep("fashion_mnist", tmp_path, image_size=28, channels=1)
    assert ds.source == "debian:dataset-fashion-mnist"
    assert ds.class_names == info["classes"]
    np.testing.assert_array_equal(ds.y_train, info["train"])
    np.testing.assert_array_equal(ds.y_val, info["val"])
    assert ds.x_train[3, 14, 14, 0] == GREYS[info["train"][3]]
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(offline.FASHION_MNIST_FILES)
    assert sorted(p.name for p in debian.iterdir()) == sorted(
        f"{n}.gz" for n in offline.FASHION_MNIST_FILES
    )


def test_fashion_mnist_missing_gives_apt_command(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(offline, "FASHION_MNIST_DEBIAN_DIR", tmp_path / "nowhere")
    with pytest.raises(DataError) as err:
        ensure_fashion_mnist_raw(tmp_path / "data")
    msg = str(err.value)
    assert "apt-get install -y dataset-fashion-mnist" in msg
    assert "remove `fashion_mnist` from `datasets:`" in msg
    assert str((tmp_path / "data").resolve()) in msg


def test_fashion_mnist_subset_is_stratified_and_seeded(tmp_path, monkeypatch) -> None:
    debian = tmp_path / "deb"
    build_fashion_mnist_debian(debian)  # train labels 0..9 once, then 9, 8
    monkeypatch.setattr(offline, "FASHION_MNIST_DEBIAN_DIR", debian)
    a = _prep("fashion_mnist", tmp_path, subset={"train": 10, "val": 2}, seed=1)
    # counts [1]*8 + [2, 2] (12 items), 10 picks: quotas 10/12 and 20/12 -> floors
    # [0]*8 + [1, 1]; 8 left go to the largest fractions: 0.83 (classes 0..7) -> all 1.
    assert np.bincount(a.y_train, minlength=10).tolist() == [1] * 10
    b = prepare_dataset(
        "fashion_mnist", data_root=tmp_path / "data", out_path=tmp_path / "b.npz", image_size=8, channels=1,
        subset={"train": 10, "val": 2}, seed=1,
    )  # fmt: skip
    np.testing.assert_array_equal(a.y_val, b.y_val)
    with pytest.raises(DataError, match=r"subset.train=13 exceeds the 12 train images"):
        _prep("fashion_mnist", tmp_path, subset={"train": 13})


@pytest.mark.slow
@pytest.mark.skipif(
    not FASHION_MNIST_DEBIAN_DIR.is_dir(), reason="Debian package dataset-fashion-mnist absent"
)
def test_fashion_mnist_real_debian_package(tmp_path) -> None:
    ds = _prep(
        "fashion_mnist", tmp_path, image_size=16, channels=3, subset={"train": 200, "val": 50}
    )
    assert ds.source == "debian:dataset-fashion-mnist"
    assert (ds.train_size, ds.val_size, ds.num_classes) == (200, 50, 10)
    assert (
        np.bincount(ds.y_train).tolist() == [20] * 10
    )  # Fashion-MNIST train is balanced (6000 each)
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"

"""The prepared .npz: atomic writes, strict reads, splits and subsets."""

from __future__ import annotations

import errno
import json

import numpy as np
import pytest

import greenpath.data.prepared as prepared
from greenpath.data import DataError, PreparedDataset, load_prepared, prepare_dataset
from greenpath.data.splits import allocate, split_train_val, stratified_sample


def _tiny(name="tiny") -> PreparedDataset:
    x = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    return PreparedDataset(
        name, x, np.array([0, 1]), x[:1], np.array([1]), ["a", "b"], False, False, "test"
    )


def test_properties_and_roundtrip(tmp_path) -> None:
    ds = _tiny()
    assert (ds.num_classes, ds.train_size, ds.val_size, ds.image_size, ds.channels) == (
        2,
        2,
        1,
        4,
        3,
    )
    prepared.save_prepared(ds, tmp_path / "t.npz")
    back = load_prepared(tmp_path / "t.npz")
    np.testing.assert_array_equal(back.x_train, ds.x_train)
    assert back.y_train.dtype == np.int64 and back.class_names == ["a", "b"]
    assert back.meta["format_version"] == prepared.FORMAT_VERSION
    assert [p.name for p in tmp_path.iterdir()] == ["t.npz"]


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch) -> None:
    out = tmp_path / "t.npz"
    prepared.save_prepared(_tiny("old"), out)
    before = out.read_bytes()

    def disk_full(fh, **arrays):
        fh.write(b"PK\x03\x04partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(prepared.np, "savez", disk_full)
    with pytest.raises(DataError, match="No space left on device"):
        prepared.save_prepared(_tiny("new"), out)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["t.npz"]


def test_load_rejects_truncated_missing_and_foreign_files(tmp_path) -> None:
    out = tmp_path / "t.npz"
    prepared.save_prepared(_tiny(), out)
    data = out.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"trunc.npz is corrupt or truncated"):
        load_prepared(tmp_path / "trunc.npz")
    with pytest.raises(DataError, match="does not exist"):
        load_prepared(tmp_path / "absent.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(DataError, match=r"lacks \['x_train'"):
        load_prepared(tmp_path / "other.npz")
    with np.load(out) as npz:
        arrays = dict(npz)
    meta = json.loads(str(arrays["meta"]))
    meta["format_version"] = 99
    arrays["meta"] = np.asarray(json.dumps(meta))
    np.savez(tmp_path / "v99.npz", **arrays)
    with pytest.raises(DataError, match="format_version 99"):
        load_prepared(tmp_path / "v99.npz")


def test_validate_rejects_bad_arrays() -> None:
    ds = _tiny()
    bad = PreparedDataset(
        "b",
        ds.x_train.astype(np.float32),
        ds.y_train,
        ds.x_val,
        ds.y_val,
        ["a", "b"],
        False,
        False,
        "t",
    )
    with pytest.raises(DataError, match="x_train must be uint8"):
        bad.validate()
    bad = PreparedDataset(
        "b", ds.x_train, np.array([0, 2]), ds.x_val, ds.y_val, ["a", "b"], False, False, "t"
    )
    with pytest.raises(DataError, match=r"labels outside \[0, 2\)"):
        bad.validate()


def test_allocate_largest_remainder() -> None:
    assert allocate(np.array([5, 3, 2]), 5).tolist() == [3, 1, 1]  # quotas 2.5, 1.5, 1.0
    assert allocate(np.array([1, 1, 1]), 2).tolist() == [1, 1, 0]  # ties: lower class first
    assert allocate(np.array([10, 0, 30]), 4).tolist() == [1, 0, 3]
    assert allocate(np.array([4, 4]), 8).tolist() == [4, 4]


def test_stratified_sample_and_split() -> None:
    labels = np.array([0] * 6 + [1] * 3 + [2] * 1)
    rng = np.random.default_rng(0)
    idx = stratified_sample(labels, 5, rng)
    assert np.bincount(labels[idx], minlength=3).tolist() == [3, 2, 0]  # quotas 3, 1.5, 0.5
    tr, va = split_train_val(labels, 0.3, seed=4)
    assert len(va) == 3 and sorted(np.concatenate([tr, va]).tolist()) == list(range(10))
    tr2, va2 = split_train_val(labels, 0.3, seed=4)
    assert va.tolist() == va2.tolist()
    multi = np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 0, 1]]
    assert len(stratified_sample(multi, 4, np.random.default_rng(1))) == 4


def test_subset_does_not_change_split_and_is_reproducible(tmp_path) -> None:
    kw = {"data_root": tmp_path, "image_size": 8, "channels": 1, "seed": 2}
    full = prepare_dataset("digits", out_path=tmp_path / "a.npz", **kw)
    sub = prepare_dataset(
        "digits", out_path=tmp_path / "b.npz", subset={"train": 100, "val": 30}, **kw
    )
    sub2 = prepare_dataset(
        "digits", out_path=tmp_path / "c.npz", subset={"train": 100, "val": 30}, **kw
    )
    assert (sub.train_size, sub.val_size) == (100, 30)
    np.testing.assert_array_equal(sub.x_train, sub2.x_train)
    # every subset image comes from the full split it was drawn from
    full_val = {row.tobytes() for row in full.x_val}
    assert all(row.tobytes() in full_val for row in sub.x_val)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"image_size": 0}, "image_size must be a positive integer"),
        ({"channels": 2}, "channels must be 1 or 3, got 2"),
        ({"val_fraction": 1.0}, r"val_fraction must be in \(0, 1\)"),
        ({"subset": {"train": 0}}, "subset.train must be a positive integer"),
        ({"subset": {"tran": 5}}, r"unknown subset key\(s\) \['tran'\]"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, pattern) -> None:
    args = {"image_size": 8, "channels": 3, **kwargs}
    with pytest.raises(DataError, match=pattern):
        prepare_dataset("lfw_faces", data_root=tmp_path, out_path=tmp_path / "o.npz", **args)


def test_unknown_dataset_lists_known(tmp_path) -> None:
    with pytest.raises(DataError, match=r"Unknown dataset 'cifar11'.*cifar10"):
        prepare_dataset(
            "cifar11", data_root=tmp_path, out_path=tmp_path / "o.npz", image_size=8, channels=3
        )

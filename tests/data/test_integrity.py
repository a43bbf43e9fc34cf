"""Failure case D1 / issue 7: corrupt or fake raw files are quarantined with a clear error,
and an offline copy is used without any network access."""

from __future__ import annotations

import gzip
import socket
import tarfile
import urllib.request

import pytest
from datafixtures import BUILDERS, build_fashion_mnist_debian, md5, write_mnist_gz

import greenpath.data.offline as offline
from greenpath.data import DataError, prepare_dataset
from greenpath.data.integrity import check_idx, file_problem, looks_like_html

HTML = (
    b"<!DOCTYPE html>\n<html><head><title>Google Drive - Virus scan warning</title></head></html>\n"
)
CIFAR10_TGZ_MD5 = "c58f30108f718f92721af3b95e74349a"  # torchvision CIFAR10.tgz_md5
FMNIST_TRAIN_IMAGES_GZ_MD5 = (
    "8d4fb7e6c68d591d4c3dfef9ec88bf0d"  # torchvision FashionMNIST.resources
)


def _prep(name, root, out, **kw):
    return prepare_dataset(name, data_root=root, out_path=out, image_size=8, channels=3, **kw)


def _quarantined(root, stem):
    qdir = root / "quarantine"
    return (
        sorted(p.name for p in qdir.iterdir() if p.name.startswith(stem + "."))
        if qdir.is_dir()
        else []
    )


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a URL or a socket connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:1]}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_html_in_place_of_cifar10_archive_is_quarantined(tmp_path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    archive = root / "cifar-10-python.tar.gz"
    archive.write_bytes(HTML)
    out = tmp_path / "cifar10.npz"
    with pytest.raises(DataError) as err:
        _prep("cifar10", root, out, download=True)
    msg = str(err.value)
    assert "'cifar10'" in msg and str(archive) in msg
    assert "HTML page" in msg and CIFAR10_TGZ_MD5 in msg
    assert not archive.exists()
    moved = _quarantined(root, "cifar-10-python.tar.gz")
    assert len(moved) == 1 and str(root / "quarantine" / moved[0]) in msg
    assert (root / "quarantine" / moved[0]).read_bytes() == HTML
    assert not out.exists()


def test_html_named_like_fashion_mnist_gz_is_quarantined(tmp_path, monkeypatch) -> None:
    debian = tmp_path / "deb"
    build_fashion_mnist_debian(debian)
    monkeypatch.setattr(offline, "FASHION_MNIST_DEBIAN_DIR", debian)
    root = tmp_path / "data"
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    fake = raw / "train-images-idx3-ubyte.gz"
    fake.write_bytes(HTML)
    with pytest.raises(DataError) as err:
        _prep("fashion_mnist", root, tmp_path / "f.npz")
    msg = str(err.value)
    assert "'fashion_mnist'" in msg and str(fake) in msg and FMNIST_TRAIN_IMAGES_GZ_MD5 in msg
    assert "apt-get install -y dataset-fashion-mnist" in msg
    assert not fake.exists() and len(_quarantined(root, fake.name)) == 1
    # After quarantine the Debian copy is used: the rerun succeeds.
    ds = _prep("fashion_mnist", root, tmp_path / "f.npz")
    assert ds.source == "debian:dataset-fashion-mnist"


def test_md5_mismatch_of_a_real_archive_is_quarantined(tmp_path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    archive = root / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(__file__, arcname="cifar-10-batches-py/readme.txt")
    got = md5(archive)
    with pytest.raises(DataError, match=f"its MD5 is {got}, expected {CIFAR10_TGZ_MD5}"):
        _prep("cifar10", root, tmp_path / "o.npz")
    assert not archive.exists()


def test_truncated_gz_is_quarantined(tmp_path, monkeypatch) -> None:
    """A truncated .gz whose MD5 is (by patching) the expected one still fails the gzip check."""
    import torchvision.datasets as tvd

    root = tmp_path / "data"
    raw = root / "MNIST" / "raw"
    sums = write_mnist_gz(raw, [0, 1, 2], [1])
    victim = raw / "train-images-idx3-ubyte.gz"
    victim.write_bytes(victim.read_bytes()[:-20])
    sums[victim.name] = md5(victim)  # fixture cannot match MNIST's real MD5: patch it
    monkeypatch.setattr(tvd.MNIST, "resources", [(n, sums[n]) for n, _ in tvd.MNIST.resources])
    with pytest.raises(DataError, match="not a complete gzip file"):
        _prep("mnist", root, tmp_path / "o.npz")
    assert not victim.exists() and len(_quarantined(root, victim.name)) == 1


def test_truncated_idx_file_is_quarantined(tmp_path) -> None:
    root = tmp_path / "data"
    raw = root / "MNIST" / "raw"
    write_mnist_gz(raw, [0, 1, 2], [1])
    for gz in raw.glob("*.gz"):
        (raw / gz.stem).write_bytes(gzip.decompress(gz.read_bytes()))
        gz.unlink()
    victim = raw / "t10k-images-idx3-ubyte"
    victim.write_bytes(victim.read_bytes()[:100])
    with pytest.raises(
        DataError, match=r"IDX header announces \(1, 28, 28\) \(800 bytes\) but the file has 100"
    ):
        _prep("mnist", root, tmp_path / "o.npz")
    assert not victim.exists()


def test_html_in_place_of_svhn_mat(tmp_path, monkeypatch) -> None:
    info = BUILDERS["svhn"](tmp_path)
    for obj, attr, value in info["md5"]:
        monkeypatch.setattr(obj, attr, value)
    (tmp_path / "test_32x32.mat").write_bytes(b"  <html><body>quota exceeded</body></html>")
    with pytest.raises(DataError, match="test_32x32.mat is corrupt: it is an HTML page"):
        _prep("svhn", tmp_path, tmp_path / "o.npz")


def test_corrupt_debian_file_is_reported_not_moved(tmp_path, monkeypatch) -> None:
    debian = tmp_path / "deb"
    build_fashion_mnist_debian(debian)
    bad = debian / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:12])
    monkeypatch.setattr(offline, "FASHION_MNIST_DEBIAN_DIR", debian)
    with pytest.raises(DataError, match=r"left in place.*--reinstall -y dataset-fashion-mnist"):
        _prep("fashion_mnist", tmp_path / "data", tmp_path / "o.npz")
    assert bad.exists()


def test_offline_copy_with_download_true_makes_no_network_access(
    tmp_path, monkeypatch, no_network
) -> None:
    info = BUILDERS["cifar10"](tmp_path)
    for obj, attr, value in info["md5"]:
        monkeypatch.setattr(obj, attr, value)
    ds = _prep("cifar10", tmp_path, tmp_path / "o.npz", download=True)
    assert ds.train_size == 10 and ds.val_size == 3


def test_offline_archives_are_extracted_without_network(tmp_path, monkeypatch, no_network) -> None:
    """MNIST .gz archives only (torchvision's download layout): extracted locally."""
    info = BUILDERS["mnist"](tmp_path)
    for obj, attr, value in info["md5"]:
        monkeypatch.setattr(obj, attr, value)
    ds = _prep("mnist", tmp_path, tmp_path / "o.npz", download=False)
    assert ds.y_train.tolist() == info["train"]
    assert (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()


def test_helpers_on_hand_made_files(tmp_path) -> None:
    page = tmp_path / "page"
    page.write_bytes(b"\xef\xbb\xbf\n  <HTML>")
    assert looks_like_html(page)
    good = tmp_path / "x-ubyte"
    good.write_bytes(b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + b"\x01\x02\x03")
    assert check_idx(good) is None
    assert file_problem(good, None) is None
    assert "MD5" in file_problem(good, "0" * 32)

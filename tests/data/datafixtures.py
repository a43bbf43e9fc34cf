"""Tiny datasets in each torchvision class's native on-disk layout, built in tmp_path.

Every image is a flat colour that encodes its class (``COLORS[label]``), so a test can
check that images and labels stay aligned through splitting, subsetting and resizing:
a flat image stays flat under bilinear resizing. JPEGs are saved at quality 100 and are
compared with a small tolerance.

Each builder returns a dict: ``classes`` (expected class names), ``train`` and ``val``
(expected label sequences in dataset order; ``val`` is None for datasets that get the
seeded split), ``total`` (all images, for seeded splits) and ``md5`` patches, a list of
(object, attribute, new value) for torchvision classes that verify real MD5s the fixture
cannot match.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

COLORS = [
    (220, 20, 20), (20, 220, 20), (20, 20, 220), (220, 220, 20), (20, 220, 220),
    (220, 20, 220), (120, 60, 0), (0, 60, 120), (250, 250, 250), (90, 90, 90),
]  # fmt: skip
GREYS = [10 + 24 * k for k in range(10)]


def md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def save_img(path: Path, label: int, size: tuple[int, int] = (12, 10)) -> None:
    """A flat image of COLORS[label]; format from the extension (.jpg, .png, .ppm)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size, COLORS[label])
    if path.suffix.lower() in (".jpg", ".jpeg"):
        img.save(path, format="JPEG", quality=100)
    else:
        img.save(path)


def flat_chw(labels: list[int], size: int) -> np.ndarray:
    """uint8 (N, 3, size, size) flat images of COLORS[label]."""
    out = np.empty((len(labels), 3, size, size), dtype=np.uint8)
    for i, lab in enumerate(labels):
        out[i] = np.asarray(COLORS[lab], dtype=np.uint8)[:, None, None]
    return out


def idx_images(images: np.ndarray) -> bytes:
    n, h, w = images.shape
    return struct.pack(">IIII", 0x00000803, n, h, w) + images.astype(np.uint8).tobytes()


def idx_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 0x00000801, len(labels)) + np.asarray(labels, np.uint8).tobytes()


def write_mnist_gz(folder: Path, train: list[int], test: list[int]) -> dict[str, str]:
    """MNIST-layout gzip'd IDX files, 28x28 flat grey images GREYS[label]. Returns name->md5."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for prefix, labels in (("train", train), ("t10k", test)):
        imgs = np.stack([np.full((28, 28), GREYS[k], np.uint8) for k in labels])
        for kind, payload in (
            ("images-idx3", idx_images(imgs)),
            ("labels-idx1", idx_labels(np.array(labels))),
        ):
            name = f"{prefix}-{kind}-ubyte.gz"
            (folder / name).write_bytes(gzip.compress(payload, mtime=0))
            out[name] = md5(folder / name)
    return out


# ----------------------------------------------------------------------------- builders


def build_cifar10(root: Path) -> dict[str, Any]:
    import torchvision.datasets as tvd

    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    names = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    train: list[int] = []
    train_list = []
    for b in range(1, 6):
        labels = [(2 * b) % 10, (2 * b + 1) % 10]
        data = flat_chw(labels, 32).reshape(len(labels), -1)
        data[0, 5] = 77  # one marked pixel: channel 0, row 0, column 5
        with open(base / f"data_batch_{b}", "wb") as fh:
            pickle.dump({"data": data, "labels": labels}, fh)
        train += labels
        train_list.append([f"data_batch_{b}", md5(base / f"data_batch_{b}")])
    test = [3, 0, 7]
    with open(base / "test_batch", "wb") as fh:
        pickle.dump({"data": flat_chw(test, 32).reshape(3, -1), "labels": test}, fh)
    with open(base / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": names}, fh)
    cls = tvd.CIFAR10
    return {
        "classes": names,
        "train": train,
        "val": test,
        "md5": [
            (cls, "train_list", train_list),
            (cls, "test_list", [["test_batch", md5(base / "test_batch")]]),
            (cls, "meta", {**cls.meta, "md5": md5(base / "batches.meta")}),
        ],
    }


def build_cifar100(root: Path) -> dict[str, Any]:
    import torchvision.datasets as tvd

    base = root / "cifar-100-python"
    base.mkdir(parents=True)
    names = [f"class{k:02d}" for k in range(100)]
    train, test = [0, 5, 9, 5], [9, 0]
    for fname, labels in (("train", train), ("test", test)):
        with open(base / fname, "wb") as fh:
            pickle.dump(
                {"data": flat_chw(labels, 32).reshape(len(labels), -1), "fine_labels": labels}, fh
            )
    with open(base / "meta", "wb") as fh:
        pickle.dump({"fine_label_names": names}, fh)
    cls = tvd.CIFAR100
    return {
        "classes": names,
        "train": train,
        "val": test,
        "md5": [
            (cls, "train_list", [["train", md5(base / "train")]]),
            (cls, "test_list", [["test", md5(base / "test")]]),
            (cls, "meta", {**cls.meta, "md5": md5(base / "meta")}),
        ],
    }


def build_mnist(root: Path) -> dict[str, Any]:
    import torchvision.datasets as tvd

    train, test = [0, 1, 2, 1, 0, 9], [9, 2]
    sums = write_mnist_gz(root / "MNIST" / "raw", train, test)
    return {
        "classes": list(tvd.MNIST.classes),
        "train": train,
        "val": test,
        "grey": True,
        "md5": [(tvd.MNIST, "resources", [(n, sums[n]) for n, _ in tvd.MNIST.resources])],
    }


def build_svhn(root: Path) -> dict[str, Any]:
    import scipy.io
    import torchvision.datasets as tvd

    root.mkdir(parents=True, exist_ok=True)
    train, test = [1, 0, 3, 0], [3, 1]  # class 0 is stored as label 10 in the .mat files
    split_list = dict(tvd.SVHN.split_list)
    for split, labels in (("train", train), ("test", test)):
        x = flat_chw(labels, 32).transpose(2, 3, 1, 0)  # (32, 32, 3, N) as in the .mat files
        y = np.array([[10 if k == 0 else k] for k in labels], dtype=np.uint8)
        path = root / f"{split}_32x32.mat"
        scipy.io.savemat(path, {"X": x, "y": y})
        url, fname, _ = split_list[split]
        split_list[split] = [url, fname, md5(path)]
    return {
        "classes": [str(d) for d in range(10)],
        "train": train,
        "val": test,
        "md5": [(tvd.SVHN, "split_list", split_list)],
    }


def build_stl10(root: Path) -> dict[str, Any]:
    import torchvision.datasets as tvd

    base = root / "stl10_binary"
    base.mkdir(parents=True)
    train, test = [0, 4, 9], [4, 0]
    for split, labels in (("train", train), ("test", test)):
        # STL-10 binaries are column-major per channel: write (N, 3, W, H).
        flat_chw(labels, 96).transpose(0, 1, 3, 2).tofile(base / f"{split}_X.bin")
        (np.array(labels, np.uint8) + 1).tofile(base / f"{split}_y.bin")
    flat_chw([1], 96).tofile(base / "unlabeled_X.bin")
    names = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]
    (base / "class_names.txt").write_text("\n".join(names) + "\n")
    cls = tvd.STL10
    return {
        "classes": names,
        "train": train,
        "val": test,
        "md5": [
            (
                cls,
                "train_list",
                [[f, md5(base / f)] for f in ("train_X.bin", "train_y.bin", "unlabeled_X.bin")],
            ),
            (cls, "test_list", [[f, md5(base / f)] for f in ("test_X.bin", "test_y.bin")]),
        ],
    }


def build_fgvc_aircraft(root: Path) -> dict[str, Any]:
    data = root / "fgvc-aircraft-2013b" / "data"
    names = ["707-320", "A320", "Cessna 172"]
    (data / "images").mkdir(parents=True)
    (data / "variants.txt").write_text("\n".join(names) + "\n")
    splits = {"train": [0, 2, 1, 2], "val": [1, 0]}
    img_id = 1000000
    for split, labels in splits.items():
        lines = []
        for lab in labels:
            img_id += 1
            save_img(data / "images" / f"{img_id}.jpg", lab)
            lines.append(f"{img_id} {names[lab]}")
        (data / f"images_variant_{split}.txt").write_text("\n".join(lines) + "\n")
    return {"classes": names, "train": splits["train"], "val": splits["val"]}


def build_stanford_cars(root: Path) -> dict[str, Any]:
    import scipy.io

    base = root / "stanford_cars"
    (base / "devkit").mkdir(parents=True)
    names = ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Audi R8 Coupe 2012"]
    scipy.io.savemat(
        base / "devkit" / "cars_meta.mat",
        {"class_names": np.array(names, dtype=object).reshape(1, -1)},
    )
    splits = {"train": [2, 0, 1], "test": [1, 2]}
    for split, labels in splits.items():
        recs = np.zeros((1, len(labels)), dtype=[("fname", "O"), ("class", "O")])
        for i, lab in enumerate(labels):
            fname = f"{i + 1:05d}.jpg"
            save_img(base / f"cars_{split}" / fname, lab)
            recs[0, i] = (fname, np.array([[lab + 1]], dtype=np.uint8))
        target = (
            base / "devkit" / "cars_train_annos.mat"
            if split == "train"
            else base / "cars_test_annos_withlabels.mat"
        )
        scipy.io.savemat(target, {"annotations": recs})
    return {"classes": names, "train": splits["train"], "val": splits["test"]}


def build_sun397(root: Path) -> dict[str, Any]:
    base = root / "SUN397"
    base.mkdir(parents=True)
    names = ["abbey", "beach", "canyon"]
    (base / "ClassName.txt").write_text("".join(f"/{n[0]}/{n}\n" for n in names))
    labels = [0] * 4 + [1] * 3 + [2] * 3
    for i, lab in enumerate(labels):
        save_img(base / names[lab][0] / names[lab] / f"sun_{i:04d}.jpg", lab)
    return {"classes": names, "train": labels, "val": None, "total": len(labels)}


def build_food101(root: Path) -> dict[str, Any]:
    base = root / "food-101"
    (base / "meta").mkdir(parents=True)
    names = ["apple_pie", "baby_back_ribs"]
    splits = {
        "train": {"apple_pie": [1, 2], "baby_back_ribs": [3]},
        "test": {"apple_pie": [4], "baby_back_ribs": [5, 6]},
    }
    expected = {}
    for split, meta in splits.items():
        js, labels = {}, []
        for cname, ids in meta.items():
            js[cname] = [f"{cname}/{i}" for i in ids]
            for i in ids:
                save_img(base / "images" / cname / f"{i}.jpg", names.index(cname))
                labels.append(names.index(cname))
        (base / "meta" / f"{split}.json").write_text(json.dumps(js))
        expected[split] = labels
    return {"classes": names, "train": expected["train"], "val": expected["test"]}


def build_dtd(root: Path) -> dict[str, Any]:
    data = root / "dtd" / "dtd"
    (data / "labels").mkdir(parents=True)
    names = ["banded", "blotchy", "zigzagged"]
    splits = {"train": [0, 1, 2, 0], "val": [1, 2, 0], "test": [2, 1, 0]}
    n = 0
    for split, labels in splits.items():
        lines = []
        for lab in labels:
            n += 1
            rel = f"{names[lab]}/{names[lab]}_{n:04d}.jpg"
            save_img(data / "images" / rel, lab)
            lines.append(rel)
        (data / "labels" / f"{split}1.txt").write_text("\n".join(lines) + "\n")
    return {"classes": names, "train": splits["train"], "val": splits["test"]}


def build_oxford_iiit_pet(root: Path) -> dict[str, Any]:
    base = root / "oxford-iiit-pet"
    (base / "annotations").mkdir(parents=True)
    breeds = ["Abyssinian", "american_bulldog", "Bengal"]  # class ids 1, 2, 3
    splits = {"trainval": [0, 1, 2, 1], "test": [2, 0, 1]}
    n = 0
    for split, labels in splits.items():
        lines = []
        for lab in labels:
            n += 1
            image_id = f"{breeds[lab]}_{n}"
            save_img(base / "images" / f"{image_id}.jpg", lab)
            species = 1 if breeds[lab][0].isupper() else 2
            lines.append(f"{image_id} {lab + 1} {species} 1")
        (base / "annotations" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return {
        "classes": ["Abyssinian", "American Bulldog", "Bengal"],
        "train": splits["trainval"],
        "val": splits["test"],
    }


def build_caltech101(root: Path) -> dict[str, Any]:
    base = root / "caltech101" / "101_ObjectCategories"
    counts = {"BACKGROUND_Google": 2, "accordion": 3, "airplanes": 4}
    for cname, n in counts.items():
        for i in range(1, n + 1):
            save_img(
                base / cname / f"image_{i:04d}.jpg",
                9 if cname.startswith("BACK") else ["accordion", "airplanes"].index(cname),
            )
    labels = [0] * 3 + [1] * 4
    return {
        "classes": ["accordion", "airplanes"],
        "train": labels,
        "val": None,
        "total": len(labels),
    }


def build_flowers102(root: Path) -> dict[str, Any]:
    import scipy.io
    import torchvision.datasets as tvd

    base = root / "flowers-102"
    all_labels = [0, 1, 2, 0, 1, 2, 1, 0]  # image ids 1..8
    for i, lab in enumerate(all_labels, 1):
        save_img(base / "jpg" / f"image_{i:05d}.jpg", lab)
    scipy.io.savemat(
        base / "imagelabels.mat", {"labels": np.array([all_labels], dtype=np.uint8) + 1}
    )
    ids = {"trnid": [1, 2, 3], "valid": [4, 5], "tstid": [6, 7, 8]}
    scipy.io.savemat(
        base / "setid.mat", {k: np.array([v], dtype=np.uint16) for k, v in ids.items()}
    )
    file_dict = dict(tvd.Flowers102._file_dict)
    file_dict["label"] = ("imagelabels.mat", md5(base / "imagelabels.mat"))
    file_dict["setid"] = ("setid.mat", md5(base / "setid.mat"))
    return {
        "classes": list(tvd.Flowers102.classes),
        "train": [all_labels[i - 1] for i in ids["trnid"]],
        "val": [all_labels[i - 1] for i in ids["tstid"]],
        "md5": [(tvd.Flowers102, "_file_dict", file_dict)],
    }


def build_gtsrb(root: Path) -> dict[str, Any]:
    base = root / "gtsrb"
    train = [0, 0, 1, 2]
    for i, lab in enumerate(train):
        save_img(base / "GTSRB" / "Training" / f"{lab:05d}" / f"00000_{i:05d}.ppm", lab)
    test = [2, 0, 1]
    rows = ["Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"]
    for i, lab in enumerate(test):
        save_img(base / "GTSRB" / "Final_Test" / "Images" / f"{i:05d}.ppm", lab)
        rows.append(f"{i:05d}.ppm;12;10;1;1;11;9;{lab}")
    (base / "GT-final_test.csv").write_text("\n".join(rows) + "\n")
    return {"classes": ["00000", "00001", "00002"], "train": train, "val": test}


def build_eurosat(root: Path) -> dict[str, Any]:
    base = root / "eurosat" / "2750"
    names = ["AnnualCrop", "Forest", "River"]
    labels = [0] * 3 + [1] * 4 + [2] * 3
    for i, lab in enumerate(labels):
        save_img(base / names[lab] / f"{names[lab]}_{i}.jpg", lab)
    return {"classes": names, "train": labels, "val": None, "total": len(labels)}


VOC_XML = """<annotation><folder>VOC2007</folder><filename>{name}.jpg</filename>
<size><width>12</width><height>10</height><depth>3</depth></size>{objects}</annotation>"""
VOC_OBJ = """<object><name>{cls}</name><pose>Unspecified</pose><truncated>0</truncated>
<difficult>{difficult}</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object>"""


def build_voc(root: Path) -> dict[str, Any]:
    from greenpath.data.torchvision_sets import VOC_CLASSES

    base = root / "VOCdevkit" / "VOC2007"
    (base / "ImageSets" / "Main").mkdir(parents=True)
    (base / "Annotations").mkdir()
    # (image id, [(class, difficult)])
    splits = {
        "train": [
            ("000005", [("chair", 0), ("chair", 1), ("dog", 0)]),
            ("000007", [("car", 0)]),
            ("000009", [("person", 1), ("horse", 0)]),
        ],
        "test": [("000001", [("dog", 0), ("person", 0)]), ("000002", [("train", 1)])],
    }
    expected = {}
    for split, items in splits.items():
        rows = []
        for name, objs in items:
            save_img(base / "JPEGImages" / f"{name}.jpg", len(rows) % 10)
            objects = "".join(VOC_OBJ.format(cls=c, difficult=d) for c, d in objs)
            (base / "Annotations" / f"{name}.xml").write_text(
                VOC_XML.format(name=name, objects=objects)
            )
            row = np.zeros(20, np.float32)
            for c, d in objs:
                if not d:
                    row[VOC_CLASSES.index(c)] = 1.0
            rows.append(row)
        (base / "ImageSets" / "Main" / f"{split}.txt").write_text(
            "\n".join(n for n, _ in items) + "\n"
        )
        expected[split] = np.stack(rows)
    return {
        "classes": list(VOC_CLASSES),
        "train": expected["train"],
        "val": expected["test"],
        "multilabel": True,
    }


def build_birdsnap(root: Path) -> dict[str, Any]:
    base = root / "birdsnap"
    names = ["Acadian_Flycatcher", "Bald_Eagle", "Cactus_Wren"]
    train, test = [0, 0, 1, 2, 2], [0, 1, 2]
    for split, labels in (("train", train), ("test", test)):
        for i, lab in enumerate(labels):
            save_img(base / split / names[lab] / f"{i:03d}.jpg", lab)
    return {"classes": names, "train": train, "val": test}


def build_fashion_mnist_debian(debian_dir: Path) -> dict[str, Any]:
    """A fake Debian dir (the package's four *.gz files) with tiny content."""
    import torchvision.datasets as tvd

    train, test = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 8], [1, 0, 3]
    write_mnist_gz(debian_dir, train, test)
    return {"classes": list(tvd.FashionMNIST.classes), "train": train, "val": test, "grey": True}


BUILDERS = {
    "cifar10": build_cifar10,
    "cifar100": build_cifar100,
    "mnist": build_mnist,
    "svhn": build_svhn,
    "stl10": build_stl10,
    "fgvc_aircraft": build_fgvc_aircraft,
    "stanford_cars": build_stanford_cars,
    "sun397": build_sun397,
    "food101": build_food101,
    "dtd": build_dtd,
    "oxford_iiit_pet": build_oxford_iiit_pet,
    "caltech101": build_caltech101,
    "flowers102": build_flowers102,
    "gtsrb": build_gtsrb,
    "eurosat": build_eurosat,
    "voc": build_voc,
    "birdsnap": build_birdsnap,
}

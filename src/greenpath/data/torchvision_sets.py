"""The paper's 12 datasets and six more, loaded through torchvision with ``download`` passed on.

Each :class:`TorchvisionSpec` records the torchvision class, the split arguments, the files
that make up an extracted copy under the data root (torchvision's own layout), the
archives torchvision would download (with their MD5 where torchvision publishes one), and
how to obtain the data by hand. Loading follows these rules:

1. Extracted copy complete: its files with a known MD5 (or IDX structure) are checked,
   then torchvision loads it with ``download=False``.
2. Otherwise every archive present is checked (HTML page, MD5, container); when all of
   them are present and good, torchvision extracts them with ``download=True``, which
   makes no network access because ``torchvision.datasets.utils.download_url`` returns
   early for a present file whose MD5 matches.
3. Otherwise, with ``download`` true and a working upstream download, torchvision downloads.
4. Otherwise :class:`DataError` names the dataset, the root, the expected files and how to
   obtain them; known-broken upstream downloads (StanfordCars: pytorch/vision#7545,
   SUN397: pytorch/vision#9348) say so.

Bad files are moved to ``<data_root>/quarantine`` (see :mod:`greenpath.data.integrity`).
Validation split: the official test split where one exists (matching the train/test sizes
in the paper's EAT-IT ``datasets.csv``: CIFAR-10, Food-101, Flowers102, StanfordCars, VOC
2007, Birdsnap); FGVCAircraft uses train/val (3334/3333, as the paper's Visual Domain
Decathlon copy). SUN397, Caltech101 and EuroSAT have no split in torchvision and get the
seeded stratified split.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from greenpath.data.base import RawDataset, RawSplit
from greenpath.data.errors import DataError
from greenpath.data.integrity import verify_files

Md5Map = dict[str, str | None]


def _none(cls: type) -> Md5Map:
    return {}


@dataclass(frozen=True)
class TorchvisionSpec:
    """How to find, check and load one torchvision dataset (paths relative to data root)."""

    name: str
    tv_class: str
    train_kwargs: dict[str, Any]
    val_kwargs: dict[str, Any] | None
    required: tuple[str, ...]
    homepage: str
    archives: Callable[[type], Md5Map] = _none
    extracted_md5: Callable[[type], Md5Map] = _none
    labels: Callable[[Any], Any] = lambda ds: ds._labels
    classes: Callable[[Any, Path], list[str]] = lambda ds, root: list(ds.classes)
    can_download: bool = True
    broken_download: str | None = None
    manual: str = ""
    extra_kwargs: dict[str, Any] = field(default_factory=dict)
    multilabel: bool = False

    @property
    def source(self) -> str:
        return f"torchvision.datasets.{self.tv_class}"


def _samples_labels(ds: Any) -> list[int]:
    return [s[1] for s in ds._samples]


def _mnist_files(prefix: str) -> tuple[str, ...]:
    return tuple(
        f"{prefix}/raw/{n}"
        for n in (
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        )
    )


def _gtsrb_classes(ds: Any, root: Path) -> list[str]:
    train_dir = Path(root) / "gtsrb" / "GTSRB" / "Training"
    return sorted(p.name for p in train_dir.iterdir() if p.is_dir())


STL10_CLASSES = [
    "airplane",
    "bird",
    "car",
    "cat",
    "deer",
    "dog",
    "horse",
    "monkey",
    "ship",
    "truck",
]
VOC_CLASSES = [
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
]  # fmt: skip

_CIFAR_MANUAL = "Or download {url} yourself and unpack it in the data root."

SPECS: dict[str, TorchvisionSpec] = {}


def _add(spec: TorchvisionSpec) -> None:
    SPECS[spec.name] = spec


def _cifar_extracted_md5(c: Any) -> dict[str, str]:
    """MD5 of every extracted CIFAR-10/100 batch file, from torchvision's class attributes."""
    return {
        **{f"{c.base_folder}/{f}": m for f, m in c.train_list + c.test_list},
        f"{c.base_folder}/{c.meta['filename']}": c.meta["md5"],
    }


_add(
    TorchvisionSpec(
        name="cifar10",
        tv_class="CIFAR10",
        train_kwargs={"train": True},
        val_kwargs={"train": False},
        required=tuple(
            f"cifar-10-batches-py/{f}"
            for f in (
                "data_batch_1",
                "data_batch_2",
                "data_batch_3",
                "data_batch_4",
                "data_batch_5",
                "test_batch",
                "batches.meta",
            )
        ),  # fmt: skip
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
        archives=lambda c: {c.filename: c.tgz_md5},
        extracted_md5=_cifar_extracted_md5,
        labels=lambda ds: ds.targets,
        manual="Or download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and put it in the data root.",
    )
)
_add(
    TorchvisionSpec(
        name="cifar100",
        tv_class="CIFAR100",
        train_kwargs={"train": True},
        val_kwargs={"train": False},
        required=("cifar-100-python/train", "cifar-100-python/test", "cifar-100-python/meta"),
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
        archives=lambda c: {c.filename: c.tgz_md5},
        extracted_md5=_cifar_extracted_md5,
        labels=lambda ds: ds.targets,
        manual="Or download https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz and put it in the data root.",
    )
)
_add(
    TorchvisionSpec(
        name="mnist",
        tv_class="MNIST",
        train_kwargs={"train": True},
        val_kwargs={"train": False},
        required=_mnist_files("MNIST"),
        homepage="https://ossci-datasets.s3.amazonaws.com/mnist/",
        archives=lambda c: {f"MNIST/raw/{f}": m for f, m in c.resources},
        extracted_md5=lambda c: {p: None for p in _mnist_files("MNIST")},
        labels=lambda ds: ds.targets.numpy(),
        manual="Or copy the four *-ubyte.gz files into <root>/MNIST/raw.",
    )
)
_add(
    TorchvisionSpec(
        name="svhn",
        tv_class="SVHN",
        train_kwargs={"split": "train"},
        val_kwargs={"split": "test"},
        required=("train_32x32.mat", "test_32x32.mat"),
        homepage="http://ufldl.stanford.edu/housenumbers/",
        extracted_md5=lambda c: {v[1]: v[2] for k, v in c.split_list.items() if k != "extra"},
        labels=lambda ds: ds.labels,
        classes=lambda ds, root: [str(d) for d in range(10)],
        manual="Or download train_32x32.mat and test_32x32.mat from the homepage into the data root.",
    )
)
_add(
    TorchvisionSpec(
        name="stl10",
        tv_class="STL10",
        train_kwargs={"split": "train"},
        val_kwargs={"split": "test"},
        required=tuple(
            f"stl10_binary/{f}"
            for f in ("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin", "unlabeled_X.bin")
        ),  # fmt: skip
        homepage="https://cs.stanford.edu/~acoates/stl10/",
        archives=lambda c: {c.filename: c.tgz_md5},
        extracted_md5=lambda c: {f"{c.base_folder}/{f}": m for f, m in c.train_list + c.test_list},
        labels=lambda ds: ds.labels,
        classes=lambda ds, root: list(getattr(ds, "classes", STL10_CLASSES)),
        manual="Or download http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz into the data root.",
    )
)
_add(
    TorchvisionSpec(
        name="fgvc_aircraft",
        tv_class="FGVCAircraft",
        train_kwargs={"split": "train"},
        val_kwargs={"split": "val"},
        extra_kwargs={"annotation_level": "variant"},
        required=(
            "fgvc-aircraft-2013b/data/variants.txt",
            "fgvc-aircraft-2013b/data/images_variant_train.txt",
            "fgvc-aircraft-2013b/data/images_variant_val.txt",
            "fgvc-aircraft-2013b/data/images",
        ),
        homepage="https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/",
        archives=lambda c: {"fgvc-aircraft-2013b.tar.gz": None},
        manual="Or download fgvc-aircraft-2013b.tar.gz from the homepage and unpack it in the data root.",
    )
)
_add(
    TorchvisionSpec(
        name="stanford_cars",
        tv_class="StanfordCars",
        train_kwargs={"split": "train"},
        val_kwargs={"split": "test"},
        required=(
            "stanford_cars/devkit/cars_meta.mat",
            "stanford_cars/devkit/cars_train_annos.mat",
            "stanford_cars/cars_test_annos_withlabels.mat",
            "stanford_cars/cars_train",
            "stanford_cars/cars_test",
        ),
        homepage="https://ai.stanford.edu/~jkrause/cars/car_dataset.html",
        labels=_samples_labels,
        can_download=False,
        broken_download=(
            "torchvision cannot download StanfordCars: the original URL is offline "
            "(pytorch/vision#7545; StanfordCars.download() raises), so `download: true` does not help"
        ),
        manual=(
            "Obtain the images (cars_train/, cars_test/), the devkit (cars_meta.mat, "
            "cars_train_annos.mat) and cars_test_annos_withlabels.mat from a mirror "
            "(see pytorch/vision#7545) and place them as listed."
        ),
    )
)
_add(
    TorchvisionSpec(
        name="sun397",
        tv_class="SUN397",
        train_kwargs={},
        val_kwargs=None,
        required=("SUN397/ClassName.txt",),
        homepage="https://vision.princeton.edu/projects/2010/SUN/",
        archives=lambda c: {"SUN397.tar.gz": c._DATASET_MD5},
        broken_download=(
            "torchvision's SUN397 download URL (vision.princeton.edu/.../SUN397.tar.gz) is known to "
            "be dead (pytorch/vision#9348), so `download: true` will most likely fail"
        ),
        manual="Obtain SUN397.tar.gz (MD5 8ca2778205c41d23104230ba66911c7a) from a mirror, put it in the data root or unpack it to <root>/SUN397.",
    )
)
_add(
    TorchvisionSpec(
        name="food101",
        tv_class="Food101",
        train_kwargs={"split": "train"},
        val_kwargs={"split": "test"},
        required=("food-101/meta/train.json", "food-101/meta/test.json", "food-101/images"),
        homepage="https://data.vision.ee.ethz.ch/cvl/datasets_extra/food-101/",
        archives=lambda c: {"food-101.tar.gz": c._MD5},
        manual="Or download http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz into the data root.",
    )
)
_add(
    TorchvisionSpec(
        name="dtd",
        tv_class="DTD",
        train_kwargs={"split": "train"},
        val_kwargs={"split": "test"},
        extra_kwargs={"partition": 1},
        required=("dtd/dtd/labels/train1.txt", "dtd/dtd/labels/test1.txt", "dtd/dtd/images"),
        homepage="https://www.robots.ox.ac.uk/~vgg/data/dtd/",
        archives=lambda c: {f"dtd/{Path(c._URL).name}": c._MD5},
        manual="Or download dtd-r1.0.1.tar.gz from the homepage into <root>/dtd.",
    )
)
_add(
    TorchvisionSpec(
        name="oxford_iiit_pet",
        tv_class="OxfordIIITPet",
        train_kwargs={"split": "trainval"},
        val_kwargs={"split": "test"},
        required=(
            "oxford-iiit-pet/annotations/trainval.txt",
            "oxford-iiit-pet/annotations/test.txt",
            "oxford-iiit-pet/images",
        ),
        homepage="https://www.robots.ox.ac.uk/~vgg/data/pets/",
        archives=lambda c: {f"oxford-iiit-pet/{Path(u).name}": m for u, m in c._RESOURCES},
        manual="Or download images.tar.gz and annotations.tar.gz from the homepage into <root>/oxford-iiit-pet.",
    )
)
_add(
    TorchvisionSpec(
        name="caltech101",
        tv_class="Caltech101",
        train_kwargs={},
        val_kwargs=None,
        extra_kwargs={"target_type": "category"},
        required=("caltech101/101_ObjectCategories",),
        homepage="https://data.caltech.edu/records/mzrjq-6wc02",
        # URL and MD5 from torchvision.datasets.Caltech101.download (not a class attribute).
        archives=lambda c: {"caltech101/caltech-101.zip": "3138e1922a9193bfa496528edbbc45d0"},
        labels=lambda ds: ds.y,
        classes=lambda ds, root: list(ds.categories),
        manual="Or download caltech-101.zip from the homepage into <root>/caltech101.",
    )
)
_add(
    TorchvisionSpec(
        name="flowers102",
        tv_class="Flowers102",
        train_kwargs={"split": "train"},
        val_kwargs={"split": "test"},
        required=("flowers-102/jpg", "flowers-102/imagelabels.mat", "flowers-102/setid.mat"),
        homepage="https://www.robots.ox.ac.uk/~vgg/data/flowers/102/",
        archives=lambda c: {f"flowers-102/{f}": m for f, m in c._file_dict.values()},
        extracted_md5=lambda c: {
            f"flowers-102/{c._file_dict[k][0]}": c._file_dict[k][1] for k in ("label", "setid")
        },
        manual="Or download 102flowers.tgz, imagelabels.mat and setid.mat from the homepage into <root>/flowers-102.",
    )
)
_add(
    TorchvisionSpec(
        name="gtsrb",
        tv_class="GTSRB",
        train_kwargs={"split": "train"},
        val_kwargs={"split": "test"},
        required=(
            "gtsrb/GTSRB/Training",
            "gtsrb/GTSRB/Final_Test/Images",
            "gtsrb/GT-final_test.csv",
        ),
        homepage="https://benchmark.ini.rub.de/",
        # MD5s from torchvision.datasets.GTSRB.download (not class attributes).
        archives=lambda c: {
            "gtsrb/GTSRB-Training_fixed.zip": "513f3c79a4c5141765e10e952eaa2478",
            "gtsrb/GTSRB_Final_Test_Images.zip": "c7e4e6327067d32654124b0fe9e82185",
            "gtsrb/GTSRB_Final_Test_GT.zip": "fe31e9c9270bbcd7b84b7f21a9d9d9e5",
        },
        labels=_samples_labels,
        classes=_gtsrb_classes,
        manual="Or download the three GTSRB zips (training, final test images, final test GT) into <root>/gtsrb.",
    )
)
_add(
    TorchvisionSpec(
        name="eurosat",
        tv_class="EuroSAT",
        train_kwargs={},
        val_kwargs=None,
        required=("eurosat/2750",),
        homepage="https://github.com/phelber/eurosat",
        # MD5 from torchvision.datasets.EuroSAT.download (not a class attribute).
        archives=lambda c: {"eurosat/EuroSAT.zip": "c8fa014336c82ac7804f0398fcb19387"},
        labels=lambda ds: ds.targets,
        manual="Or download EuroSAT.zip (RGB) into <root>/eurosat.",
    )
)


def _voc_archives(cls: type) -> Md5Map:
    from torchvision.datasets.voc import DATASET_YEAR_DICT

    return {
        DATASET_YEAR_DICT[k]["filename"]: DATASET_YEAR_DICT[k]["md5"] for k in ("2007", "2007-test")
    }


_add(
    TorchvisionSpec(
        name="voc",
        tv_class="VOCDetection",
        train_kwargs={"image_set": "train"},
        val_kwargs={"image_set": "test"},
        extra_kwargs={"year": "2007"},
        required=tuple(
            f"VOCdevkit/VOC2007/{p}"
            for p in (
                "ImageSets/Main/train.txt",
                "ImageSets/Main/test.txt",
                "Annotations",
                "JPEGImages",
            )
        ),  # fmt: skip
        homepage="http://host.robots.ox.ac.uk/pascal/VOC/voc2007/",
        archives=_voc_archives,
        labels=lambda ds: voc_multilabels(ds.annotations),
        classes=lambda ds, root: list(VOC_CLASSES),
        multilabel=True,
        manual="Or download VOCtrainval_06-Nov-2007.tar and VOCtest_06-Nov-2007.tar into the data root.",
    )
)
_add(
    TorchvisionSpec(
        name="birdsnap",
        tv_class="ImageFolder",
        train_kwargs={"root": "birdsnap/train"},
        val_kwargs={"root": "birdsnap/test"},
        required=("birdsnap/train", "birdsnap/test"),
        homepage="https://thomasberg.org/ (Birdsnap, Berg et al. CVPR 2014)",
        labels=lambda ds: ds.targets,
        can_download=False,
        broken_download=(
            "torchvision has no Birdsnap downloader; Birdsnap is published as a list of image URLs "
            "(many no longer resolve), so `download: true` cannot fetch it"
        ),
        manual=(
            "Fetch the images with the Birdsnap download script and arrange them as "
            "<root>/birdsnap/{train,test}/<class name>/*.jpg (torchvision ImageFolder layout)."
        ),
    )
)


def voc_multilabels(annotation_files: list[str]) -> np.ndarray:
    """0/1 class indicators from VOC annotation XML files.

    An image's row has 1 for every class with at least one object whose ``<difficult>``
    is not 1 (objects marked difficult are ignored, as in the VOC classification
    benchmark). Rows may be all zero when every object is difficult.

    Returns:
        float32 (len(annotation_files), 20), columns in :data:`VOC_CLASSES` order.

    Raises:
        DataError: an annotation is unreadable or names an unknown class.
    """
    index = {c: i for i, c in enumerate(VOC_CLASSES)}
    out = np.zeros((len(annotation_files), len(VOC_CLASSES)), dtype=np.float32)
    for row, path in enumerate(annotation_files):
        try:
            root = ET.parse(path).getroot()
        except (ET.ParseError, OSError) as exc:
            raise DataError(f"Dataset 'voc': annotation {path} is unreadable ({exc}).") from exc
        for obj in root.iter("object"):
            name = (obj.findtext("name") or "").strip()
            if (obj.findtext("difficult") or "0").strip() == "1":
                continue
            if name not in index:
                raise DataError(f"Dataset 'voc': annotation {path} names unknown class {name!r}.")
            out[row, index[name]] = 1.0
    return out


# ----------------------------------------------------------------------------- loading


def expected_files_text(spec: TorchvisionSpec, root: Path) -> str:
    """Human-readable list of the extracted files and the archives of ``spec``."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, spec.tv_class)
    lines = ", ".join(str(root / p) for p in spec.required)
    archives = spec.archives(cls)
    if archives:
        arch = ", ".join(f"{root / p}" + (f" (MD5 {m})" if m else "") for p, m in archives.items())
        lines += f"; or, for offline extraction, the archive(s) {arch}"
    return lines


def missing_message(spec: TorchvisionSpec, root: Path, download: bool) -> str:
    """The DataError text for a dataset whose files are absent."""
    parts = [
        f"Dataset {spec.name!r} ({spec.source}) not found under data root {root.resolve()}.",
        f"Expected: {expected_files_text(spec, root)}.",
    ]
    if spec.broken_download:
        parts.append(f"Note: {spec.broken_download}.")
    elif not download:
        parts.append(
            f"To obtain it, set `data: {{download: true}}` in the config on a machine with network "
            f"access (torchvision downloads from {spec.homepage}), then rerun."
        )
    if spec.manual:
        parts.append(spec.manual.replace("<root>", str(root)))
    parts.append(f"Or remove {spec.name!r} from `datasets:` in the config.")
    return " ".join(parts)


def resolve_download(spec: TorchvisionSpec, cls: type, root: Path, download: bool) -> bool:
    """Check the files on disk and decide the ``download`` argument for torchvision.

    Returns:
        False when an extracted copy is complete (checked); True when all archives are
        present and checked (offline extraction, no network) or when downloading is
        allowed and possible.

    Raises:
        DataError: a bad file (quarantined) or nothing usable on disk.
    """
    fix = missing_message(spec, root, download)
    extracted = {root / p: m for p, m in spec.extracted_md5(cls).items()}
    verify_files(spec.name, root, extracted, "Obtain a fresh copy. " + fix)
    if all((root / p).exists() for p in spec.required):
        return False
    archives = {root / p: m for p, m in spec.archives(cls).items()}
    verify_files(spec.name, root, archives, "Obtain a fresh copy. " + fix)
    if archives and all(p.is_file() for p in archives):
        return True
    if download and spec.can_download:
        return True
    raise DataError(fix)


def _class_aligned_labels(
    train_names: list[str], val_names: list[str], labels: np.ndarray, name: str
) -> np.ndarray:
    if val_names == train_names:
        return labels
    index = {c: i for i, c in enumerate(train_names)}
    unknown = sorted(set(val_names) - set(index))
    if unknown:
        raise DataError(
            f"Dataset {name!r}: the validation split has classes absent from the training split: "
            f"{unknown[:5]}{'...' if len(unknown) > 5 else ''}."
        )
    remap = np.array([index[c] for c in val_names], dtype=np.int64)
    return remap[labels]


def load_torchvision_raw(spec: TorchvisionSpec, data_root: Path, download: bool) -> RawDataset:
    """Load ``spec``'s train and validation splits as a :class:`RawDataset`."""
    import torchvision.datasets as tvd

    root = Path(data_root)
    cls = getattr(tvd, spec.tv_class)
    use_download = resolve_download(spec, cls, root, download)

    def make(kwargs: dict[str, Any]) -> Any:
        try:
            if spec.tv_class == "ImageFolder":
                return cls(str(root / kwargs["root"]))
            return cls(str(root), download=use_download, **spec.extra_kwargs, **kwargs)
        except DataError:
            raise
        except Exception as exc:
            hint = (
                f" Note: {spec.broken_download}." if (use_download and spec.broken_download) else ""
            )
            raise DataError(
                f"Dataset {spec.name!r}: {spec.source}(root={str(root)!r}, "
                f"download={use_download}, {kwargs}) failed: {type(exc).__name__}: {exc}.{hint} "
                f"Expected: {expected_files_text(spec, root)}."
            ) from exc

    train_ds = make(spec.train_kwargs)
    if spec.tv_class == "SUN397":
        order = sorted(
            range(len(train_ds._image_files)), key=lambda i: str(train_ds._image_files[i])
        )
        train_ds._image_files = [train_ds._image_files[i] for i in order]
        train_ds._labels = [train_ds._labels[i] for i in order]
    class_names = [str(c) for c in spec.classes(train_ds, root)]
    dtype = np.float32 if spec.multilabel else np.int64
    train = RawSplit(np.asarray(spec.labels(train_ds), dtype=dtype), _image_reader(spec, train_ds))
    val = None
    if spec.val_kwargs is not None:
        val_ds = make(spec.val_kwargs)
        val_labels = np.asarray(spec.labels(val_ds), dtype=dtype)
        if not spec.multilabel:
            val_names = [str(c) for c in spec.classes(val_ds, root)]
            val_labels = _class_aligned_labels(class_names, val_names, val_labels, spec.name)
        val = RawSplit(val_labels, _image_reader(spec, val_ds))
    return RawDataset(
        train=train,
        val=val,
        class_names=class_names,
        source=spec.source,
        multilabel=spec.multilabel,
        info={"downloaded_or_extracted": use_download},
    )


def _image_reader(spec: TorchvisionSpec, ds: Any) -> Callable[[int], Image.Image]:
    if spec.tv_class == "VOCDetection":
        return lambda i: Image.open(ds.images[i]).convert("RGB")
    return lambda i: ds[i][0]

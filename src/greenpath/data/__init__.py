"""greenpath.data: the dataset registry and the prepare-once uint8 cache.

Public API::

    list_datasets() -> list[str]
    prepare_dataset(name, *, data_root, out_path, image_size, channels, seed=0,
                    subset=None, val_fraction=0.2, download=False, options=None)
    prepare_from_config(name, config, out_path)
    load_prepared(path) -> PreparedDataset
    ensure_fashion_mnist_raw(data_root) -> Path
    DataError, PreparedDataset, FASHION_MNIST_DEBIAN_DIR

See docs/datasets.md for every dataset, its source, licence and how to obtain it offline.
"""

from greenpath.data.errors import DataError
from greenpath.data.offline import (
    FASHION_MNIST_DEBIAN_DIR,
    FASHION_MNIST_DEBIAN_PACKAGE,
    ensure_fashion_mnist_raw,
)
from greenpath.data.prepared import PreparedDataset, load_prepared, save_prepared
from greenpath.data.registry import (
    OFFLINE_DATASETS,
    PAPER_DATASETS,
    dataset_arguments,
    list_datasets,
    prepare_dataset,
    prepare_from_config,
)

__all__ = [
    "DataError",
    "FASHION_MNIST_DEBIAN_DIR",
    "FASHION_MNIST_DEBIAN_PACKAGE",
    "OFFLINE_DATASETS",
    "PAPER_DATASETS",
    "PreparedDataset",
    "dataset_arguments",
    "ensure_fashion_mnist_raw",
    "list_datasets",
    "load_prepared",
    "prepare_dataset",
    "prepare_from_config",
    "save_prepared",
]

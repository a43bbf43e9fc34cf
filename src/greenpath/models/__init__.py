"""Models trained by greenpath: ``small_cnn`` (CPU runs) and ``vgg16_head`` (the paper's).

Every model built here carries three lists of module-name prefixes that the training
methods use (see :func:`layer_groups`):

- ``last_layer``: the final classification layer (``freeze`` with
  ``trainable: last_layer``, the paper's setting: "all but the last layer" frozen);
- ``last_block``: the last block of the network (``trainable: last_block``);
- ``always_frozen``: modules frozen on every path (the VGG16 convolutional base, which the
  paper keeps frozen with its ImageNet weights).
"""

from greenpath.models.build import (
    MODEL_NAMES,
    ModelError,
    SmallCNN,
    VGG16Head,
    build_model,
    layer_groups,
    vgg16_weights_path,
)

__all__ = [
    "MODEL_NAMES",
    "ModelError",
    "SmallCNN",
    "VGG16Head",
    "build_model",
    "layer_groups",
    "vgg16_weights_path",
]

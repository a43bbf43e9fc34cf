"""greenpath.models: shapes, named layer groups, the frozen VGG16 base, cached-weights error."""

from __future__ import annotations

import pytest
import torch

from greenpath.models import (
    ModelError,
    SmallCNN,
    build_model,
    layer_groups,
    vgg16_weights_path,
)


@pytest.mark.parametrize("channels,size", [(1, 8), (3, 16), (3, 5)])
def test_small_cnn_shapes_and_dtype(channels, size):
    torch.manual_seed(0)
    m = build_model("small_cnn", num_classes=7, in_channels=channels, image_size=size, width=4)
    assert isinstance(m, SmallCNN)
    out = m(torch.randn(2, channels, size, size))
    assert out.shape == (2, 7)
    assert all(p.dtype == torch.float32 for p in m.parameters())
    # widths 4, 8, 16 -> classifier reads 16 features
    assert m.classifier.in_features == 16


def test_small_cnn_init_is_seeded():
    torch.manual_seed(3)
    a = build_model("small_cnn", num_classes=3, in_channels=1, image_size=8)
    torch.manual_seed(3)
    b = build_model("small_cnn", num_classes=3, in_channels=1, image_size=8)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_layer_groups_name_real_modules():
    m = build_model("small_cnn", num_classes=3, in_channels=1, image_size=8)
    g = layer_groups(m)
    assert g["last_layer"] == ("classifier",)
    assert g["last_block"] == ("features.block3", "classifier")
    names = dict(m.named_modules())
    for key in ("last_layer", "last_block"):
        assert all(n in names for n in g[key])


def test_vgg16_head_structure_and_frozen_base():
    torch.manual_seed(0)
    m = build_model("vgg16_head", num_classes=5, in_channels=1, image_size=32, pretrained=False)
    # paper head: Flatten-4096-4096-Dropout(0.5)-classes
    head = m.head
    assert head.fc1.in_features == 512 and head.fc1.out_features == 4096
    assert head.fc2.out_features == 4096
    assert head.dropout.p == 0.5
    assert head.out.out_features == 5
    assert not any(p.requires_grad for p in m.base.parameters())
    assert all(p.requires_grad for p in m.head.parameters())
    m.eval()
    assert m(torch.randn(1, 1, 32, 32)).shape == (1, 5)
    g = layer_groups(m)
    assert g["last_layer"] == ("head.out",) and g["always_frozen"] == ("base",)


def test_vgg16_head_rejects_small_images():
    with pytest.raises(ModelError, match="image_size >= 32"):
        build_model("vgg16_head", num_classes=5, in_channels=3, image_size=16)


def test_vgg16_pretrained_not_cached_names_path_and_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    expected = tmp_path / "torch" / "hub" / "checkpoints" / "vgg16-397923af.pth"
    assert vgg16_weights_path() == expected
    with pytest.raises(ModelError) as err:
        build_model("vgg16_head", num_classes=5, in_channels=3, image_size=32, pretrained=True)
    msg = str(err.value)
    assert str(expected) in msg
    assert "IMAGENET1K_V1" in msg and "pretrained: false" in msg


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(name="resnet"), "unknown model"),
        (dict(num_classes=0), "num_classes"),
        (dict(in_channels=2), "in_channels"),
        (dict(image_size=3), "image_size"),
    ],
)
def test_build_model_errors(kwargs, match):
    args = dict(name="small_cnn", num_classes=3, in_channels=1, image_size=8)
    args.update(kwargs)
    name = args.pop("name")
    with pytest.raises(ModelError, match=match):
        build_model(name, **args)


def test_vgg16_pretrained_loads_cached_features(tmp_path, monkeypatch):
    """A cached file in torchvision's layout is read (weights_only) into the frozen base."""
    from torchvision.models.vgg import cfgs, make_layers

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.manual_seed(1)
    src = make_layers(cfgs["D"])
    path = vgg16_weights_path()
    path.parent.mkdir(parents=True)
    torch.save({f"features.{k}": v for k, v in src.state_dict().items()}, path)
    torch.manual_seed(2)
    m = build_model("vgg16_head", num_classes=2, in_channels=3, image_size=32, pretrained=True)
    for k, v in src.state_dict().items():
        assert torch.equal(m.base.state_dict()[k], v), k
    path.write_bytes(b"<html>not weights</html>")
    with pytest.raises(ModelError, match="cannot load VGG16 weights"):
        build_model("vgg16_head", num_classes=2, in_channels=3, image_size=32, pretrained=True)

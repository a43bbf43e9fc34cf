"""Layer freezing that really freezes.

A frozen module gets ``requires_grad = False`` on its parameters, its parameters leave
the optimizer (see :func:`rebuild_optimizer`), and every BatchNorm inside it is *pinned* in
eval mode: its ``train`` method is replaced on the instance, so a later ``model.train()``
(which recurses through ``child.train(mode)``) leaves it in eval mode and its
``running_mean``, ``running_var`` and ``num_batches_tracked`` stay bit-identical
(pytorch/pytorch#86590; indexnet_matting#35 was a helper that set eval once and was undone
by the loop's ``model.train()``).

Dropout inside a frozen part stays active in training mode, as in Keras, where
``trainable = False`` changes BatchNorm to inference mode but not Dropout.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Iterable, Sequence

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from greenpath.models import layer_groups


def _pinned_eval_train(self: nn.Module, mode: bool = True) -> nn.Module:
    """Replacement ``train`` for a frozen BatchNorm: always eval, whatever ``mode``."""
    return nn.Module.train(self, False)


def pin_eval(module: nn.Module) -> None:
    """Put ``module`` in eval mode for good (``module.train()`` keeps it in eval)."""
    module.train = types.MethodType(_pinned_eval_train, module)  # type: ignore[method-assign]
    nn.Module.train(module, False)


def is_pinned(module: nn.Module) -> bool:
    """True if :func:`pin_eval` was applied to ``module``."""
    return getattr(module.train, "__func__", None) is _pinned_eval_train


def _matches(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def freeze_modules(model: nn.Module, prefixes: Sequence[str]) -> list[str]:
    """Freeze every module whose qualified name is, or lies under, one of ``prefixes``.

    Returns:
        Names of the frozen leaf modules that hold parameters or buffers, in model order
        (BatchNorm layers included), e.g. ``["features.block1.conv", "features.block1.bn"]``.
    """
    frozen: list[str] = []
    for name, module in model.named_modules():
        if not name or not _matches(name, prefixes):
            continue
        for p in module.parameters(recurse=False):
            p.requires_grad_(False)
            p.grad = None  # a stale gradient must not reach any optimizer
        if isinstance(module, _BatchNorm):
            pin_eval(module)
        has_state = any(True for _ in module.parameters(recurse=False)) or any(
            True for _ in module.buffers(recurse=False)
        )
        if has_state and not list(module.children()):
            frozen.append(name)
    return frozen


def freeze_all_but(model: nn.Module, trainable: str) -> list[str]:
    """Freeze everything except the model's ``last_layer`` or ``last_block``.

    Args:
        model: built by :func:`greenpath.models.build_model`.
        trainable: ``"last_layer"`` (the paper: all but the last layer frozen) or
            ``"last_block"``.

    Returns:
        Names of all frozen leaf modules (see :func:`freeze_modules`), including the
        model's ``always_frozen`` part.

    Raises:
        ValueError: unknown ``trainable``.
    """
    groups = layer_groups(model)
    if trainable not in ("last_layer", "last_block"):
        raise ValueError(
            f"methods.freeze.trainable = {trainable!r}; choose last_layer or last_block"
        )
    keep = groups[trainable]
    top = [n for n, _ in model.named_children()]
    prefixes: list[str] = []
    # Every top-level module not containing a kept part is frozen whole; a top-level module
    # that contains a kept part is frozen child by child, recursively.
    stack = list(top)
    while stack:
        name = stack.pop(0)
        if _matches(name, keep):
            continue
        if any(k.startswith(name + ".") for k in keep):
            sub = model.get_submodule(name)
            stack[0:0] = [f"{name}.{c}" for c, _ in sub.named_children()]
            continue
        prefixes.append(name)
    return freeze_modules(model, prefixes)


def frozen_layer_names(model: nn.Module) -> list[str]:
    """Leaf modules whose parameters are all frozen, or pinned BatchNorm layers."""
    out = []
    for name, module in model.named_modules():
        if not name or list(module.children()):
            continue
        params = list(module.parameters(recurse=False))
        if (params and not any(p.requires_grad for p in params)) or is_pinned(module):
            out.append(name)
    return out


def rebuild_optimizer(optimizer: torch.optim.Optimizer, model: nn.Module) -> torch.optim.Optimizer:
    """A new optimizer of the same class over ``model``'s trainable parameters only.

    Works for any ``torch.optim`` optimizer: every parameter group keeps all its entries
    (learning rate, momentum, betas, weight decay, AdamW's ``decoupled_weight_decay``, ...)
    and loses its frozen parameters; the constructor gets only the defaults its signature
    names. Each kept parameter carries its state (e.g. Adam's ``step``, ``exp_avg``,
    ``exp_avg_sq``, SGD's ``momentum_buffer``) over, so the trainable layers continue
    exactly where they were; frozen parameters are in no group, so momentum and weight
    decay never move them.

    Raises:
        ValueError: no parameter of ``optimizer`` is trainable any more.
    """
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    groups = []
    for group in optimizer.param_groups:
        params = [p for p in group["params"] if id(p) in trainable]
        if params:
            groups.append({**group, "params": params})
    if not groups:
        raise ValueError(
            f"every parameter of the {type(optimizer).__name__} optimizer is frozen; "
            "keep a trainable part (methods.freeze.trainable)"
        )
    accepted = inspect.signature(type(optimizer).__init__).parameters
    defaults = {k: v for k, v in optimizer.defaults.items() if k in accepted}
    new = type(optimizer)(groups, **defaults)
    for group in groups:
        for p in group["params"]:
            if p in optimizer.state:
                new.state[p] = optimizer.state[p]
    return new

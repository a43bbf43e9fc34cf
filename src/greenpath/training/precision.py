"""Which reduced precision a ``quant`` branch can really use on this device.

Rules (checked before the branch trains, with a tiny probe forward/backward pass):

============ ===================== ====================================================
device       requested             effective
============ ===================== ====================================================
CUDA         ``auto`` / ``fp16``   ``fp16`` autocast + ``torch.amp.GradScaler("cuda")``
CUDA         ``bf16``              ``bf16`` autocast, no scaler, when the GPU has native
                                   bf16 (compute capability >= 8.0); otherwise ``fp16`` +
                                   GradScaler (bf16 on pre-Ampere is slow emulation,
                                   pytorch/pytorch#148322)
CPU          ``auto`` / ``bf16``   ``bf16`` autocast, no scaler
CPU          ``fp16``              ``bf16`` autocast, no scaler (CPU autocast is built for
                                   bf16 and has no GradScaler, joeynmt#198, nanoGPT#481);
                                   ``precision_requested`` stays ``fp16``
============ ===================== ====================================================

If the probe fails the branch is ``skipped`` with the reason; it never runs fp32 under a
reduced-precision label. Parameters always stay fp32 (autocast only casts inside its
regions), so freezing then quantising never meets "Attempting to unscale FP16 gradients".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: Precision label of a normal (fp32) run.
FP32 = "fp32"

_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Precision:
    """The precision a job runs in.

    Attributes:
        requested: what the config asked for (``fp32`` for base/freeze; ``auto``, ``fp16``
            or ``bf16`` for quant).
        effective: what actually runs: ``fp32``, ``fp16`` or ``bf16``; ``None`` when the
            branch is skipped.
        device_type: ``"cpu"`` or ``"cuda"``.
        use_scaler: True for fp16 on CUDA (``torch.amp.GradScaler("cuda")``).
        reason: why ``effective`` differs from ``requested``, or why the branch is skipped.
    """

    requested: str
    effective: str | None
    device_type: str
    use_scaler: bool = False
    reason: str | None = None

    @property
    def skipped(self) -> bool:
        """True when no supported precision exists (the branch writes a ``skipped`` row)."""
        return self.effective is None

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """The autocast dtype, or None for fp32 (no autocast)."""
        return _DTYPES.get(self.effective or "")

    def autocast(self) -> torch.autocast:
        """An autocast context for this precision (disabled for fp32)."""
        dtype = self.autocast_dtype
        return torch.autocast(
            device_type=self.device_type, dtype=dtype or torch.float32, enabled=dtype is not None
        )


def full_precision(device: torch.device | str) -> Precision:
    """The fp32 precision of trunk and freeze jobs."""
    return Precision(FP32, FP32, torch.device(device).type)


def _probe(device: torch.device, dtype: torch.dtype) -> str | None:
    """Run a conv + linear forward/backward under autocast; return an error text or None."""
    try:
        torch.manual_seed(0)  # only affects the throw-away probe; RNG is restored by callers
        conv = torch.nn.Conv2d(3, 4, 3, padding=1).to(device)
        lin = torch.nn.Linear(4, 2).to(device)
        x = torch.randn(2, 3, 8, 8, device=device)
        with torch.autocast(device_type=device.type, dtype=dtype):
            y = lin(conv(x).mean(dim=(2, 3)))
            if y.dtype != dtype:
                return f"autocast produced {y.dtype}, not {dtype}"
            loss = y.float().sum()
        loss.backward()
    except Exception as exc:  # noqa: BLE001 - any failure means "not supported here"
        return f"{type(exc).__name__}: {exc}"
    return None


def resolve_precision(requested: str, device: torch.device | str) -> Precision:
    """Decide the effective precision of a ``quant`` branch (see the module table).

    Args:
        requested: ``auto``, ``fp16`` or ``bf16`` (config ``methods.quant.dtype``).
        device: the training device.

    Returns:
        A :class:`Precision`; ``effective is None`` (skipped) with ``reason`` when neither
        the requested nor the fallback precision works on this device.

    Raises:
        ValueError: unknown ``requested`` value.
    """
    if requested not in ("auto", "fp16", "bf16"):
        raise ValueError(f"methods.quant.dtype = {requested!r}; choose auto, fp16 or bf16")
    dev = torch.device(device)
    state = torch.get_rng_state()
    cuda_state = torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None
    try:
        if dev.type == "cuda":
            bf16_native = torch.cuda.is_bf16_supported(including_emulation=False)
            if requested == "bf16" and bf16_native:
                err = _probe(dev, torch.bfloat16)
                if err is None:
                    return Precision(requested, "bf16", "cuda")
            reason = None
            if requested == "bf16":
                reason = (
                    "bf16 requested but this GPU has no native bf16 (compute capability < 8.0)"
                    if not bf16_native
                    else "bf16 probe failed"
                ) + "; running fp16 with GradScaler"
            err = _probe(dev, torch.float16)
            if err is None:
                return Precision(requested, "fp16", "cuda", use_scaler=True, reason=reason)
            return Precision(
                requested, None, "cuda", reason=f"unsupported: fp16 autocast failed ({err})"
            )
        if dev.type != "cpu":
            return Precision(
                requested, None, dev.type, reason=f"unsupported device type {dev.type!r}"
            )
        reason = None
        if requested == "fp16":
            reason = "fp16 requested on CPU: CPU autocast runs bf16 (no GradScaler on CPU)"
        err = _probe(dev, torch.bfloat16)
        if err is None:
            return Precision(requested, "bf16", "cpu", reason=reason)
        return Precision(
            requested, None, "cpu", reason=f"unsupported: bf16 autocast on CPU failed ({err})"
        )
    finally:
        torch.set_rng_state(state)
        if cuda_state is not None:
            torch.cuda.set_rng_state(cuda_state, dev)

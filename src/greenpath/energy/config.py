"""The ``energy:`` section of the greenpath config: defaults, JSON schema, validation.

Every key is documented in ``docs/energy.md``. The lead pastes :data:`ENERGY_CONFIG_SCHEMA`
into ``workflow/schemas/config.schema.yaml``; :func:`resolve_energy_config` validates the same
schema at run time so a meter is never built from a bad value.
"""

from __future__ import annotations

import copy
from typing import Any

#: Default carbon intensity, gCO2eq/kWh: world average emission intensity of electricity
#: generation in 2023 (481 gCO2/kWh), Ember yearly electricity data, 2024 release (as charted
#: by Statista, "Electricity generation emission intensity worldwide 2023", 3 July 2024). Set
#: your own grid's value; the value used is recorded with every run.
DEFAULT_CARBON_INTENSITY_G_PER_KWH: float = 481.0
CARBON_INTENSITY_SOURCE: str = (
    "Ember yearly electricity data (2024 release): world average emission intensity of "
    "electricity generation in 2023, 481 gCO2/kWh"
)

#: Defaults of every key of the ``energy:`` config section (see docs/energy.md).
DEFAULT_ENERGY_CONFIG: dict[str, Any] = {
    # GPU through NVML (nvidia-ml-py): "auto" measures the GPUs this process uses, "off" never
    # touches NVML (GPU reported "absent").
    "gpu": "auto",
    # CPU packages and DRAM through Linux powercap: "auto" reads it when readable, else the
    # estimate; "off" always uses the estimate.
    "rapl": "auto",
    # Root of the powercap sysfs tree (tests point this at a fake tree).
    "powercap_root": "/sys/class/powercap",
    # Longest period of the RAPL wraparound guard poller, s. The poller runs faster when a
    # domain's wrap time (max_energy_range_uj / max power) needs it (docs/energy.md).
    "poll_interval_s": 1.0,
    # Period of the NVML power-sampling thread used only on GPUs without the energy counter, s.
    "gpu_poll_interval_s": 0.1,
    # Longest wait at a window's end for the NVML energy counter's next refresh, s; the
    # boundary's energy is interpolated between the refreshes around it.
    # 0 = no wait (short windows may then read 0 J).
    "gpu_counter_wait_s": 0.5,
    # Estimate: TDP of all CPU packages together, W. 85 W is the TDP of e.g. an Intel Xeon
    # Silver 4210 (datasheet); set your CPU's.
    "cpu_tdp_w": 85.0,
    # Estimate, cpu_load "system" only: share of TDP drawn when idle (an assumption;
    # calibrate with idle_baseline_s on a machine with readable RAPL). Must be > 0.
    "cpu_idle_fraction": 0.3,
    # Estimate: logical CPUs the TDP covers; null = psutil.cpu_count(logical=True).
    "cpu_cores": None,
    # Estimate: "process" charges the CPU time of this process and its children (TDP / cores
    # per CPU second, no idle share: the same work gives the same joules on a shared
    # machine); "system" charges the whole machine over the wall time, idle share included
    # (comparable to a package counter).
    "cpu_load": "process",
    # Estimate: DRAM power per GiB installed, W/GiB. 0.375 = 3 W per 8 GB, the constant of
    # CodeCarbon's RAM model.
    "dram_w_per_gb": 0.375,
    # Estimate: installed memory in GiB; null = psutil.virtual_memory().total.
    "dram_gb": None,
    # Idle baseline measured before training, s; 0 = off.
    "idle_baseline_s": 0.0,
    # Grid carbon intensity used for co2eq_g, gCO2eq/kWh (see DEFAULT_CARBON_INTENSITY...).
    "carbon_intensity_g_per_kwh": DEFAULT_CARBON_INTENSITY_G_PER_KWH,
}

#: JSON-schema fragment (draft 2020-12) for the ``energy:`` section.
ENERGY_CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "Energy meter settings (docs/energy.md). Missing keys take their defaults.",
    "properties": {
        "gpu": {"enum": ["auto", "off"], "default": "auto"},
        "rapl": {"enum": ["auto", "off"], "default": "auto"},
        "powercap_root": {"type": "string", "minLength": 1, "default": "/sys/class/powercap"},
        "poll_interval_s": {"type": "number", "exclusiveMinimum": 0, "default": 1.0},
        "gpu_poll_interval_s": {"type": "number", "exclusiveMinimum": 0, "default": 0.1},
        "gpu_counter_wait_s": {"type": "number", "minimum": 0, "default": 0.5},
        "cpu_tdp_w": {"type": "number", "exclusiveMinimum": 0, "default": 85.0},
        "cpu_idle_fraction": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 1,
            "default": 0.3,
        },
        "cpu_cores": {"type": ["integer", "null"], "minimum": 1, "default": None},
        "cpu_load": {"enum": ["process", "system"], "default": "process"},
        "dram_w_per_gb": {"type": "number", "exclusiveMinimum": 0, "default": 0.375},
        "dram_gb": {"type": ["number", "null"], "exclusiveMinimum": 0, "default": None},
        "idle_baseline_s": {"type": "number", "minimum": 0, "default": 0.0},
        "carbon_intensity_g_per_kwh": {
            "type": "number",
            "minimum": 0,
            "default": DEFAULT_CARBON_INTENSITY_G_PER_KWH,
        },
    },
}


def resolve_energy_config(energy_config: dict[str, Any] | None) -> dict[str, Any]:
    """Validate ``energy_config`` against :data:`ENERGY_CONFIG_SCHEMA` and fill in defaults.

    Args:
        energy_config: the ``energy:`` mapping of the YAML config, or ``None`` for defaults.

    Returns:
        A new dict with every key of :data:`DEFAULT_ENERGY_CONFIG`.

    Raises:
        ValueError: naming the bad key and value when validation fails.
    """
    import jsonschema

    cfg = {} if energy_config is None else dict(energy_config)
    validator = jsonschema.Draft202012Validator(ENERGY_CONFIG_SCHEMA)
    errors = sorted(validator.iter_errors(cfg), key=lambda e: list(e.path))
    if errors:
        msgs = []
        for e in errors:
            where = "energy." + ".".join(str(p) for p in e.path) if e.path else "energy"
            msgs.append(f"{where}: {e.message}")
        raise ValueError(
            "invalid energy config: " + "; ".join(msgs) + " (see docs/energy.md for the keys)"
        )
    out = copy.deepcopy(DEFAULT_ENERGY_CONFIG)
    out.update(cfg)
    return out

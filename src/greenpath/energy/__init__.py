"""Energy measurement per window (epoch or any code block): GPU via NVML, CPU/DRAM via Linux
powercap (RAPL), an estimate when no counter can be read. See docs/energy.md.

Light to import: torch and pynvml are imported lazily (pynvml when a GPU meter is built;
torch never, it is only looked up in ``sys.modules``).

Typical use::

    meter = make_meter(config.get("energy"), device="cpu")
    w = meter.begin(); train_one_epoch(); m = meter.end(w)
    row.update(meter.record_fields(m))
    meter.close()
"""

from greenpath.energy.config import (
    CARBON_INTENSITY_SOURCE,
    DEFAULT_CARBON_INTENSITY_G_PER_KWH,
    DEFAULT_ENERGY_CONFIG,
    ENERGY_CONFIG_SCHEMA,
    resolve_energy_config,
)
from greenpath.energy.estimate import EstimateMeter
from greenpath.energy.factory import make_meter
from greenpath.energy.measurement import (
    COMPONENTS,
    RECORD_FIELDS,
    SOURCES,
    ComponentEnergy,
    IdleBaseline,
    Measurement,
    absent,
    co2eq_g,
    gross_and_net,
)
from greenpath.energy.meter import CompositeMeter, MeasureContext, Meter, Poller, Window
from greenpath.energy.nvml import NvmlGpuMeter
from greenpath.energy.rapl import RaplMeter, discover_rapl

__all__ = [
    "CARBON_INTENSITY_SOURCE",
    "COMPONENTS",
    "DEFAULT_CARBON_INTENSITY_G_PER_KWH",
    "DEFAULT_ENERGY_CONFIG",
    "ENERGY_CONFIG_SCHEMA",
    "RECORD_FIELDS",
    "SOURCES",
    "ComponentEnergy",
    "CompositeMeter",
    "EstimateMeter",
    "IdleBaseline",
    "MeasureContext",
    "Measurement",
    "Meter",
    "NvmlGpuMeter",
    "Poller",
    "RaplMeter",
    "Window",
    "absent",
    "co2eq_g",
    "discover_rapl",
    "gross_and_net",
    "make_meter",
    "resolve_energy_config",
]

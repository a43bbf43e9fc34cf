"""CPU-package and DRAM energy from the Linux powercap interface (Intel RAPL, AMD).

Layout read (kernel ``Documentation/power/powercap/powercap.rst``)::

    <root>/intel-rapl:0/            name = package-0    energy_uj  max_energy_range_uj
    <root>/intel-rapl:0/intel-rapl:0:0   name = core | uncore | dram
    <root>/intel-rapl:0:0 -> …      (the same sub-zone, also linked at the top level)
    <root>/intel-rapl:1/            name = package-1 …

AMD CPUs report through the same ``intel-rapl`` control type on current kernels; a tree
using ``amd-rapl`` zone names is read the same way when no ``intel-rapl`` zone exists.

What is summed (failure case E8):

* CPU = every package zone (``name`` starting with ``package``), keyed by its sysfs path.
* DRAM = every ``dram`` sub-zone, keyed by its sysfs path.
* ``core`` / ``uncore`` sub-zones are parts of their package and are **not** added again;
  ``psys`` (platform) zones overlap packages and are skipped; ``intel-rapl-mmio`` zones
  duplicate the MSR package zones and are skipped.

Counters are in microjoules and wrap to 0 after ``max_energy_range_uj`` (failure case E1).
Each domain keeps an unwrapped 64-bit accumulator: every read adds
``(raw - last) mod max_energy_range_uj``. A daemon thread reads every ``poll_interval_s``
(well under the wrap time) so a window spanning several wrap periods stays right; window
boundaries read the counters themselves (never a poller baseline, failure case E9).

Why not pyRAPL: it is unmaintained since 2019 and returns nothing for a window in which the
counter wrapped, so greenpath reads powercap directly.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass
from typing import Any

from greenpath.energy.measurement import ComponentEnergy
from greenpath.energy.meter import Meter, Poller

log = logging.getLogger("greenpath.energy")

_ZONE_RE = re.compile(r"^(intel-rapl|amd-rapl):(\d+)(?::(\d+))?$")
#: control-type prefixes in order of preference; only one is used so nothing is counted twice
_PREFIXES: tuple[str, ...] = ("intel-rapl", "amd-rapl")
#: power used to judge whether the poll period is well under the wrap time, W (conservative)
_WRAP_CHECK_POWER_W = 500.0

#: files already warned about (one warning per file per process)
_warned_files: set[str] = set()


def _reset_warnings() -> None:
    """Forget which files were warned about (tests)."""
    _warned_files.clear()


def permission_hint(path: str) -> str:
    """How to grant read access to a root-only RAPL ``energy_uj`` file."""
    root = os.path.dirname(os.path.dirname(path)) or "/sys/class/powercap"
    return (
        "since Linux 5.10 (CVE-2020-8694, 'Platypus') energy_uj is readable by root only. "
        f"To grant read access until reboot: sudo chmod o+r {root}/intel-rapl:*/energy_uj "
        f"{root}/intel-rapl:*:*/energy_uj ; to keep it across reboots use a udev rule, e.g. "
        "/etc/udev/rules.d/99-powercap.rules with "
        '\'SUBSYSTEM=="powercap", ACTION=="add", RUN+="/bin/chmod o+r /sys%p/energy_uj"\' '
        "(or a systemd-tmpfiles 'z' line with mode 0444). See docs/energy.md"
    )


def _read_int(path: str) -> int:
    """Read one integer sysfs attribute.

    Opened afresh each time (sysfs regenerates the value per open; a fake tree may replace
    the file); ``os.open``/``os.read`` keep a read at a few µs.

    Raises:
        PermissionError: unreadable file (root-only ``energy_uj``); OSError; ValueError.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        return int(os.read(fd, 64))
    finally:
        os.close(fd)


def _read_name(path: str) -> str:
    with open(os.path.join(path, "name"), encoding="ascii", errors="replace") as f:
        return f.read().strip()


@dataclass(frozen=True)
class RaplDomain:
    """One powercap zone that greenpath sums.

    Attributes:
        path: sysfs path of the zone directory; the key of this domain in every result.
        name: the zone's ``name`` (``package-0``, ``dram``).
        kind: ``"package"`` (CPU) or ``"dram"``.
        max_energy_range_uj: counter range; the counter wraps to 0 after this value, µJ.
    """

    path: str
    name: str
    kind: str
    max_energy_range_uj: int

    @property
    def energy_file(self) -> str:
        return os.path.join(self.path, "energy_uj")


@dataclass(frozen=True)
class RaplDiscovery:
    """Result of scanning a powercap root.

    Attributes:
        root: the scanned root.
        prefix: the control type used (``intel-rapl`` / ``amd-rapl``) or ``None``.
        domains: package and dram zones, packages first, in numeric order.
        skipped: ``(path, name, reason)`` of zones deliberately not summed.
    """

    root: str
    prefix: str | None
    domains: tuple[RaplDomain, ...]
    skipped: tuple[tuple[str, str, str], ...]


def _zone_sort_key(entry: str) -> tuple[int, int]:
    m = _ZONE_RE.match(entry)
    assert m is not None
    return int(m.group(2)), -1 if m.group(3) is None else int(m.group(3))


def discover_rapl(root: str) -> RaplDiscovery:
    """Find the package and DRAM zones under powercap ``root``.

    Sub-zones are looked for both at the top level (``intel-rapl:0:0``) and inside their
    package directory; the same zone found twice (symlink) is kept once, keyed by its
    top-level path when it has one.

    Raises:
        Nothing for a missing root: it yields no domains.
    """
    try:
        entries = os.listdir(root)
    except OSError:
        return RaplDiscovery(root, None, (), ())
    prefix = None
    for p in _PREFIXES:
        if any((m := _ZONE_RE.match(e)) and m.group(1) == p for e in entries):
            prefix = p
            break
    if prefix is None:
        return RaplDiscovery(root, None, (), ())

    def ours(entry: str) -> bool:
        m = _ZONE_RE.match(entry)
        return m is not None and m.group(1) == prefix

    packages = sorted((e for e in entries if ours(e) and e.count(":") == 1), key=_zone_sort_key)
    sub_paths: dict[str, str] = {}  # realpath -> key path
    for e in sorted((e for e in entries if ours(e) and e.count(":") == 2), key=_zone_sort_key):
        p = os.path.join(root, e)
        sub_paths.setdefault(os.path.realpath(p), p)
    for pkg in packages:
        pdir = os.path.join(root, pkg)
        try:
            inner = os.listdir(pdir)
        except OSError:
            continue
        for e in sorted((e for e in inner if ours(e) and e.count(":") == 2), key=_zone_sort_key):
            p = os.path.join(pdir, e)
            sub_paths.setdefault(os.path.realpath(p), p)

    domains: list[RaplDomain] = []
    skipped: list[tuple[str, str, str]] = []

    def add(path: str, kind_wanted: str) -> None:
        try:
            name = _read_name(path)
        except OSError as e:
            skipped.append((path, "?", f"unreadable name: {e}"))
            return
        if kind_wanted == "package":
            if not name.startswith("package"):
                reason = (
                    "platform (psys) zone overlaps the packages"
                    if name.startswith("psys")
                    else "not a package zone"
                )
                skipped.append((path, name, reason))
                return
            kind = "package"
        else:
            if name != "dram":
                skipped.append((path, name, f"'{name}' is part of its package; not added again"))
                return
            kind = "dram"
        try:
            rng = _read_int(os.path.join(path, "max_energy_range_uj"))
        except (OSError, ValueError) as e:
            skipped.append((path, name, f"max_energy_range_uj unreadable ({e})"))
            return
        if rng <= 0:
            skipped.append((path, name, f"max_energy_range_uj={rng} is not positive"))
            return
        domains.append(RaplDomain(path, name, kind, rng))

    for pkg in packages:
        add(os.path.join(root, pkg), "package")
    for _real, p in sorted(
        sub_paths.items(), key=lambda kv: _zone_sort_key(os.path.basename(kv[1]))
    ):
        add(p, "dram")
    return RaplDiscovery(root, prefix, tuple(domains), tuple(skipped))


class _Accumulator:
    """Unwrapped energy of one domain, µJ, advanced by every read (poller or boundary)."""

    __slots__ = ("domain", "last_raw", "total_uj", "wraps")

    def __init__(self, domain: RaplDomain, first_raw: int) -> None:
        self.domain = domain
        self.last_raw = first_raw
        self.total_uj = 0
        self.wraps = 0

    def advance(self, raw: int) -> int:
        delta = raw - self.last_raw
        if delta < 0:  # counter wrapped (E1): add the range
            delta += self.domain.max_energy_range_uj
            self.wraps += 1
        self.last_raw = raw
        self.total_uj += delta
        return self.total_uj


class RaplMeter(Meter):
    """CPU-package and DRAM energy from powercap counters (source ``rapl``).

    Build it with :meth:`probe`, which finds the domains and checks they are readable; the
    meter measures only the components whose domains could all be read (``components``), and
    ``fallback_reasons`` says why the others cannot be measured.

    Args:
        discovery: the zones to read (from :func:`discover_rapl`).
        first_raw: a first reading of every domain's ``energy_uj``, µJ.
        poll_interval_s: wraparound-guard polling period, s.
    """

    def __init__(
        self,
        discovery: RaplDiscovery,
        first_raw: dict[str, int],
        poll_interval_s: float = 1.0,
        fallback_reasons: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.discovery = discovery
        self.domains = tuple(d for d in discovery.domains if d.path in first_raw)
        self.poll_interval_s = float(poll_interval_s)
        self.fallback_reasons = dict(fallback_reasons or {})
        self.components = tuple(
            c
            for c, kind in (("cpu", "package"), ("dram", "dram"))
            if any(d.kind == kind for d in self.domains)
        )
        self._lock = threading.Lock()
        self._acc = {d.path: _Accumulator(d, first_raw[d.path]) for d in self.domains}
        self._files = [(d.path, d.energy_file) for d in self.domains]
        self._kinds = {d.path: d.kind for d in self.domains}
        self._errors: dict[str, str] = {}
        self._poller = Poller(self._poll, self.poll_interval_s, "greenpath-rapl-poller")
        for d in self.domains:
            wrap_s = d.max_energy_range_uj / 1e6 / _WRAP_CHECK_POWER_W
            if self.poll_interval_s > wrap_s / 4:
                log.warning(
                    "RAPL poll_interval_s=%s is not well under the wrap time of %s "
                    "(%.0f s at %.0f W); lower energy.poll_interval_s",
                    self.poll_interval_s,
                    d.path,
                    wrap_s,
                    _WRAP_CHECK_POWER_W,
                )

    @classmethod
    def probe(cls, root: str, poll_interval_s: float = 1.0) -> RaplMeter:
        """Discover the zones under ``root`` and read each once.

        A component (``cpu`` = packages, ``dram``) is measured only if every one of its
        domains is readable. An unreadable ``energy_uj`` (PermissionError: root-only since
        Linux 5.10) logs ONE warning per file per process naming the file and how to grant
        read access; the component then falls back to the estimate (see ``make_meter``).
        """
        disc = discover_rapl(root)
        first: dict[str, int] = {}
        bad: dict[str, list[tuple[str, str]]] = {"package": [], "dram": []}
        for d in disc.domains:
            try:
                first[d.path] = _read_int(d.energy_file)
            except PermissionError as e:
                bad[d.kind].append((d.energy_file, f"PermissionError: {e.strerror or e}"))
            except (OSError, ValueError) as e:
                bad[d.kind].append((d.energy_file, f"{type(e).__name__}: {e}"))
        reasons: dict[str, str] = {}
        denied = [f for kind in bad for f, why in bad[kind] if why.startswith("PermissionError")]
        if denied and denied[0] not in _warned_files:
            _warned_files.update(denied)
            more = f" (and {len(denied) - 1} more energy_uj files)" if len(denied) > 1 else ""
            log.warning(
                "cannot read %s%s: permission denied; CPU/DRAM energy falls back to the "
                "estimate (source 'estimate'). %s",
                denied[0],
                more,
                permission_hint(denied[0]),
            )
        for comp, kind in (("cpu", "package"), ("dram", "dram")):
            kinds = [d for d in disc.domains if d.kind == kind]
            if bad[kind]:
                f, why = bad[kind][0]
                reasons[comp] = f"RAPL counter unreadable ({why} on {f})"
                for d in kinds:  # all-or-nothing per component
                    first.pop(d.path, None)
            elif not kinds:
                reasons[comp] = (
                    f"no RAPL {'package' if kind == 'package' else 'dram'} domain under {root}"
                )
        return cls(disc, first, poll_interval_s, reasons)

    # --- reading ------------------------------------------------------------------------
    def _read_all_locked(self) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        for path, f in self._files:
            try:
                raw = _read_int(f)
            except (OSError, ValueError) as e:
                self._errors[path] = f"{type(e).__name__} reading {f}: {e}"
                out[path] = None
                continue
            out[path] = self._acc[path].advance(raw)
        return out

    def _poll(self) -> None:
        with self._lock:
            self._read_all_locked()

    def _start_threads(self) -> None:
        if self.domains:
            self._poller.start()

    def _stop_threads(self) -> None:
        self._poller.stop()

    def _snapshot(self) -> dict[str, int | None]:
        with self._lock:
            return self._read_all_locked()

    def _energy(
        self, start: dict[str, int | None], end: dict[str, int | None], wall_s: float
    ) -> dict[str, ComponentEnergy]:
        out: dict[str, ComponentEnergy] = {}
        for comp, kind in (("cpu", "package"), ("dram", "dram")):
            if comp not in self.components:
                continue
            domains: dict[str, float] = {}
            problems: list[str] = []
            for d in self.domains:
                if d.kind != kind:
                    continue
                a, b = start.get(d.path), end.get(d.path)
                if a is None or b is None:
                    domains[d.path] = float("nan")
                    problems.append(self._errors.get(d.path, f"{d.path} unreadable"))
                else:
                    domains[d.path] = (b - a) / 1e6
            total = sum(domains.values())
            note = None
            if problems:
                note = "RAPL read failed: " + "; ".join(problems)
            elif total == 0.0 and wall_s > 0:
                note = "RAPL counters did not advance during this window"
            out[comp] = ComponentEnergy(total, "rapl", False, domains, note)
        return out

    def _metadata(self) -> dict[str, Any]:
        return {
            "rapl": {
                "root": self.discovery.root,
                "control_type": self.discovery.prefix,
                "poll_interval_s": self.poll_interval_s,
                "domains": [
                    {
                        "path": d.path,
                        "name": d.name,
                        "kind": d.kind,
                        "max_energy_range_uj": d.max_energy_range_uj,
                    }
                    for d in self.domains
                ],
                "skipped": [
                    {"path": p, "name": n, "reason": r} for p, n, r in self.discovery.skipped
                ],
                "fallback_reasons": self.fallback_reasons,
            }
        }

    @property
    def poller(self) -> Poller:
        """The wraparound-guard thread (for benchmarks)."""
        return self._poller

    def wraps(self) -> dict[str, int]:
        """Wraparounds corrected so far, per domain path."""
        with self._lock:
            return {p: a.wraps for p, a in self._acc.items()}

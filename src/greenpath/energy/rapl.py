"""CPU-package and DRAM energy from the Linux powercap interface (Intel RAPL, AMD).

Layout read (kernel ``Documentation/power/powercap/powercap.rst``)::

    <root>/intel-rapl:0/            name = package-0    energy_uj  max_energy_range_uj
    <root>/intel-rapl:0/intel-rapl:0:0   name = core | uncore | dram
    <root>/intel-rapl:0:0 -> …      (the same sub-zone, also linked at the top level)
    <root>/intel-rapl:1/            name = package-1 …

AMD CPUs report through the same ``intel-rapl`` control type on current kernels; a tree
using ``amd-rapl`` zone names is read the same way when no ``intel-rapl`` zone exists.

What is summed:

* CPU = every package zone (``name`` starting with ``package``), keyed by its sysfs path.
* DRAM = every ``dram`` sub-zone, keyed by its sysfs path.
* ``core`` / ``uncore`` sub-zones are parts of their package and are **not** added again;
  ``psys`` (platform) zones overlap packages and are skipped; ``intel-rapl-mmio`` zones
  duplicate the MSR package zones and are skipped. Every skipped zone is listed in the
  metadata, with the reason.

Counters are in microjoules and wrap to 0 after ``max_energy_range_uj``.
Each domain keeps an unwrapped accumulator (Python int): every read adds
``(raw - last) mod max_energy_range_uj``, which is right as long as two consecutive reads
are less than one wrap apart. The wrap time of a domain is
``max_energy_range_uj / max_power`` where ``max_power`` comes from the zone's powercap
constraint files (:func:`max_power_w`) or, without them, a stated conservative bound
(:data:`CONSERVATIVE_MAX_POWER_W`). A daemon thread reads every domain every
``poll_period_s = min(poll_interval_s, shortest wrap time / WRAP_SAFETY)``, so no wrap is
missed while the thread keeps its pace. Every read records the gap since the previous one;
a window in which some gap reached the domain's wrap time (the thread was starved, or the
period cannot be that short) may have lost whole wraps: its component is flagged
``uncertain`` and the note names the gap (the value is then a lower bound). Window
boundaries read the counters themselves (never a poller baseline).

Why not pyRAPL: it is unmaintained since 2019 and returns nothing for a window in which the
counter wrapped, so greenpath reads powercap directly.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from greenpath.energy.measurement import ComponentEnergy, absent
from greenpath.energy.meter import Meter, Poller

log = logging.getLogger("greenpath.energy")

_ZONE_RE = re.compile(r"^(intel-rapl|amd-rapl):(\d+)(?::(\d+))?$")
_MMIO_RE = re.compile(r"^intel-rapl-mmio:\d+(?::\d+)?$")
#: control-type prefixes in order of preference; only one is used so nothing is counted twice
_PREFIXES: tuple[str, ...] = ("intel-rapl", "amd-rapl")

#: Power bound of one RAPL domain when its zone has no readable constraint file, W. Above
#: the package power of any current CPU (the largest server parts have a 500 W TDP), so
#: the wrap time it gives is shorter than the real one: polling is, if anything, too often.
CONSERVATIVE_MAX_POWER_W: float = 1000.0
#: A power limit is an average over its time window; the draw over one poll period may
#: exceed it. Without a ``constraint_*_max_power_uw`` the bound is this times the largest
#: ``constraint_*_power_limit_uw``.
POWER_LIMIT_MARGIN: float = 2.0
#: The poll period is at most the shortest wrap time divided by this, so a poll delayed by
#: up to three periods still misses no wrap.
WRAP_SAFETY: float = 4.0
#: Shortest poll period the guard thread is given, s.
MIN_POLL_PERIOD_S: float = 0.001

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
        max_power_w: the most power the domain can draw, W (:func:`max_power_w`).
        max_power_source: where ``max_power_w`` comes from (a constraint file, or the
            conservative bound).
    """

    path: str
    name: str
    kind: str
    max_energy_range_uj: int
    max_power_w: float = CONSERVATIVE_MAX_POWER_W
    max_power_source: str = "conservative bound"

    @property
    def energy_file(self) -> str:
        return os.path.join(self.path, "energy_uj")

    @property
    def wrap_s(self) -> float:
        """Shortest time in which the counter can wrap: range / max power, s."""
        return self.max_energy_range_uj / 1e6 / self.max_power_w


def max_power_w(zone: str) -> tuple[float, str]:
    """The most power a powercap zone can draw, W, and where that figure comes from.

    In order: the largest ``constraint_N_max_power_uw`` (the zone's stated maximum); else
    :data:`POWER_LIMIT_MARGIN` times the largest ``constraint_N_power_limit_uw`` (limits are
    averages over a time window); else :data:`CONSERVATIVE_MAX_POWER_W`. Unreadable,
    non-numeric or non-positive files are ignored.
    """
    found: dict[str, list[tuple[int, str]]] = {"max_power_uw": [], "power_limit_uw": []}
    try:
        entries = os.listdir(zone)
    except OSError:
        entries = []
    for e in sorted(entries):
        m = re.match(r"^constraint_\d+_(max_power_uw|power_limit_uw)$", e)
        if not m:
            continue
        try:
            v = _read_int(os.path.join(zone, e))
        except (OSError, ValueError):
            continue
        if v > 0:
            found[m.group(1)].append((v, e))
    if found["max_power_uw"]:
        v, e = max(found["max_power_uw"])
        return v / 1e6, e
    if found["power_limit_uw"]:
        v, e = max(found["power_limit_uw"])
        return POWER_LIMIT_MARGIN * v / 1e6, f"{POWER_LIMIT_MARGIN:g} x {e}"
    return CONSERVATIVE_MAX_POWER_W, (
        f"conservative bound {CONSERVATIVE_MAX_POWER_W:g} W (no readable constraint file)"
    )


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


_MMIO_REASON = "intel-rapl-mmio zone duplicates the MSR package zone"
#: Start of the skip reason of a zone whose counter range cannot be read.
RANGE_UNREADABLE = "max_energy_range_uj unreadable"


def _name_or_unknown(path: str) -> str:
    try:
        return _read_name(path)
    except OSError:
        return "?"


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
    mmio = tuple(
        (os.path.join(root, e), _name_or_unknown(os.path.join(root, e)), _MMIO_REASON)
        for e in sorted(entries)
        if _MMIO_RE.match(e)
    )
    prefix = None
    for p in _PREFIXES:
        if any((m := _ZONE_RE.match(e)) and m.group(1) == p for e in entries):
            prefix = p
            break
    if prefix is None:
        return RaplDiscovery(root, None, (), mmio)

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
        range_file = os.path.join(path, "max_energy_range_uj")
        try:
            rng = _read_int(range_file)
        except (OSError, ValueError) as e:
            skipped.append((path, name, f"{RANGE_UNREADABLE} ({type(e).__name__}: {e})"))
            return
        if rng <= 0:
            skipped.append((path, name, f"{RANGE_UNREADABLE}: {rng} is not positive"))
            return
        domains.append(RaplDomain(path, name, kind, rng, *max_power_w(path)))

    for pkg in packages:
        add(os.path.join(root, pkg), "package")
    for _real, p in sorted(
        sub_paths.items(), key=lambda kv: _zone_sort_key(os.path.basename(kv[1]))
    ):
        add(p, "dram")
    return RaplDiscovery(root, prefix, tuple(domains), tuple(skipped) + mmio)


class _Accumulator:
    """Unwrapped energy of one domain, µJ, advanced by every read (poller or boundary).

    ``unsafe`` counts the reads that came a full wrap time (or more) after the previous one,
    after which whole wraps may be missing; ``worst_gap_s`` is the longest such gap.
    """

    __slots__ = ("domain", "last_raw", "last_t", "total_uj", "wraps", "unsafe", "worst_gap_s")

    def __init__(self, domain: RaplDomain, first_raw: int, t: float) -> None:
        self.domain = domain
        self.last_raw = first_raw
        self.last_t = t
        self.total_uj = 0
        self.wraps = 0
        self.unsafe = 0
        self.worst_gap_s = 0.0

    def advance(self, raw: int, t: float) -> tuple[int, int]:
        """Add one read taken at ``t`` (s); returns ``(total_uj, unsafe)``."""
        gap = t - self.last_t
        if gap >= self.domain.wrap_s:
            self.unsafe += 1
            self.worst_gap_s = max(self.worst_gap_s, gap)
        delta = raw - self.last_raw
        if delta < 0:  # counter wrapped (E1): add the range
            delta += self.domain.max_energy_range_uj
            self.wraps += 1
        self.last_raw, self.last_t = raw, t
        self.total_uj += delta
        return self.total_uj, self.unsafe


def poll_period_s(domains: tuple[RaplDomain, ...], poll_interval_s: float) -> float:
    """Period of the wraparound guard: ``min(poll_interval_s, shortest wrap / WRAP_SAFETY)``,
    at least :data:`MIN_POLL_PERIOD_S`, s."""
    period = float(poll_interval_s)
    for d in domains:
        period = min(period, d.wrap_s / WRAP_SAFETY)
    return max(period, MIN_POLL_PERIOD_S)


def _range_unreadable(disc: RaplDiscovery, kind: str) -> list[tuple[str, str]]:
    """``(path, reason)`` of the zones of ``kind`` skipped for an unreadable range."""
    names = ("package",) if kind == "package" else ("dram",)
    return [
        (p, r) for p, n, r in disc.skipped if r.startswith(RANGE_UNREADABLE) and n.startswith(names)
    ]


def _warn_range_unreadable(disc: RaplDiscovery) -> None:
    for path, name, reason in disc.skipped:
        if reason.startswith(RANGE_UNREADABLE) and path not in _warned_files:
            _warned_files.add(path)
            log.warning(
                "RAPL zone %s (%s): %s; it is not read (its component falls back to the "
                "estimate). Check the file's permissions and the powercap driver",
                path,
                name,
                reason,
            )


def _warn_denied(denied: list[str]) -> None:
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


def _no_domain_reason(disc: RaplDiscovery, kind: str) -> str:
    """Why no domain of ``kind`` is read, naming the zones that were seen and skipped."""
    why = f"no RAPL {kind} domain under {disc.root}"
    if disc.skipped:
        seen = "; ".join(f"{p} ({n}): {r}" for p, n, r in disc.skipped)
        why += f" (zones seen and skipped: {seen})"
    return why


class RaplMeter(Meter):
    """CPU-package and DRAM energy from powercap counters (source ``rapl``).

    Build it with :meth:`probe`, which finds the domains and checks they are readable; the
    meter measures only the components whose domains could all be read (``components``), and
    ``fallback_reasons`` says why the others cannot be measured.

    Args:
        discovery: the zones to read (from :func:`discover_rapl`).
        first_raw: a first reading of every domain's ``energy_uj``, µJ.
        poll_interval_s: longest wraparound-guard period, s; the thread polls every
            :attr:`poll_period_s` (shorter when a domain's wrap time needs it).
        fallback_reasons: per component, why it is not measured here.
        clock: monotonic clock the read gaps are timed with, s (tests pass a fake one).
    """

    def __init__(
        self,
        discovery: RaplDiscovery,
        first_raw: dict[str, int],
        poll_interval_s: float = 1.0,
        fallback_reasons: dict[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.discovery = discovery
        self.domains = tuple(d for d in discovery.domains if d.path in first_raw)
        self.poll_interval_s = float(poll_interval_s)
        self.poll_period_s = poll_period_s(self.domains, self.poll_interval_s)
        self.fallback_reasons = dict(fallback_reasons or {})
        self.components = tuple(
            c
            for c, kind in (("cpu", "package"), ("dram", "dram"))
            if any(d.kind == kind for d in self.domains)
        )
        self._clock = clock
        self._lock = threading.Lock()
        t0 = clock()
        self._acc = {d.path: _Accumulator(d, first_raw[d.path], t0) for d in self.domains}
        self._files = [(d.path, d.energy_file) for d in self.domains]
        self._errors: dict[str, str] = {}
        self._poller = Poller(self._poll, self.poll_period_s, "greenpath-rapl-poller")
        self._warn_if_period_too_long()

    def _warn_if_period_too_long(self) -> None:
        """Warn once when the guard thread cannot poll often enough for some domain."""
        for d in self.domains:
            if self.poll_period_s * WRAP_SAFETY > d.wrap_s:
                log.warning(
                    "RAPL %s can wrap every %.3g s (range %d uJ at %.4g W, %s); the guard "
                    "thread polls every %.3g s, so a missed wrap cannot be ruled out: windows "
                    "with a read gap of %.3g s or more are flagged uncertain",
                    d.path,
                    d.wrap_s,
                    d.max_energy_range_uj,
                    d.max_power_w,
                    d.max_power_source,
                    self.poll_period_s,
                    d.wrap_s,
                )

    @classmethod
    def probe(
        cls, root: str, poll_interval_s: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> RaplMeter:
        """Discover the zones under ``root`` and read each once.

        A component (``cpu`` = packages, ``dram``) is measured only if every one of its
        domains is readable. An unreadable ``energy_uj`` (PermissionError: root-only since
        Linux 5.10) logs ONE warning per file per process naming the file and how to grant
        read access; a zone whose ``max_energy_range_uj`` cannot be read is logged the same
        way. The component then falls back to the estimate (see ``make_meter``) with the
        reason in ``fallback_reasons``.
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
        _warn_denied([f for kind in bad for f, why in bad[kind] if why.startswith("Permission")])
        _warn_range_unreadable(disc)
        reasons: dict[str, str] = {}
        for comp, kind in (("cpu", "package"), ("dram", "dram")):
            kinds = [d for d in disc.domains if d.kind == kind]
            if bad[kind]:
                f, why = bad[kind][0]
                reasons[comp] = f"RAPL counter unreadable ({why} on {f})"
                for d in kinds:  # all-or-nothing per component
                    first.pop(d.path, None)
            elif range_bad := _range_unreadable(disc, kind):
                path, why = range_bad[0]
                reasons[comp] = (
                    f"RAPL {kind} zone {path} found but its {why}: without the counter range "
                    "wraps cannot be corrected"
                )
                for d in kinds:
                    first.pop(d.path, None)
            elif not kinds:
                reasons[comp] = _no_domain_reason(disc, kind)
        return cls(disc, first, poll_interval_s, reasons, clock)

    # --- reading ------------------------------------------------------------------------
    def _read_all_locked(self) -> dict[str, tuple[int, int] | None]:
        out: dict[str, tuple[int, int] | None] = {}
        for path, f in self._files:
            try:
                raw = _read_int(f)
            except (OSError, ValueError) as e:
                self._errors[path] = f"{type(e).__name__} reading {f}: {e}"
                out[path] = None
                continue
            out[path] = self._acc[path].advance(raw, self._clock())
        return out

    def _poll(self) -> None:
        with self._lock:
            self._read_all_locked()

    def _start_threads(self) -> None:
        if self.domains:
            self._poller.start()

    def _stop_threads(self) -> None:
        self._poller.stop()

    def _snapshot(self) -> dict[str, tuple[int, int] | None]:
        with self._lock:
            return self._read_all_locked()

    def _energy(
        self,
        start: dict[str, tuple[int, int] | None],
        end: dict[str, tuple[int, int] | None],
        wall_s: float,
    ) -> dict[str, ComponentEnergy]:
        out: dict[str, ComponentEnergy] = {}
        for comp, kind in (("cpu", "package"), ("dram", "dram")):
            if comp in self.components:
                out[comp] = self._component(
                    [d for d in self.domains if d.kind == kind], start, end, wall_s
                )
        return out

    def _component(
        self,
        domains: list[RaplDomain],
        start: dict[str, tuple[int, int] | None],
        end: dict[str, tuple[int, int] | None],
        wall_s: float,
    ) -> ComponentEnergy:
        """One component's energy from its domains' boundary readings ``(total_uj, unsafe)``.

        A domain that could not be read makes the component absent (a partial sum would
        silently lose that domain); a read gap of a wrap time or more flags it uncertain.
        """
        joules: dict[str, float] = {}
        problems: list[str] = []
        gaps: list[str] = []
        for d in domains:
            a, b = start.get(d.path), end.get(d.path)
            if a is None or b is None:
                problems.append(self._errors.get(d.path, f"{d.path} unreadable"))
                continue
            joules[d.path] = (b[0] - a[0]) / 1e6
            if b[1] > a[1]:
                gaps.append(
                    f"{d.path}: {b[1] - a[1]} read gap(s) of up to "
                    f"{self._acc[d.path].worst_gap_s:.3g} s, not under the wrap time "
                    f"{d.wrap_s:.3g} s ({d.max_energy_range_uj} uJ at {d.max_power_w:.4g} W, "
                    f"{d.max_power_source})"
                )
        if problems:
            return absent(
                "RAPL read failed: " + "; ".join(problems), {d.path: math.nan for d in domains}
            )
        total = math.fsum(joules.values())
        note = None
        if gaps:
            note = "RAPL counter may have wrapped unseen (value is a lower bound): " + "; ".join(
                gaps
            )
        elif total == 0.0 and wall_s > 0:
            note = "RAPL counters did not advance during this window"
        return ComponentEnergy(total, "rapl", False, joules, note, uncertain=bool(gaps))

    def _metadata(self) -> dict[str, Any]:
        return {
            "rapl": {
                "root": self.discovery.root,
                "control_type": self.discovery.prefix,
                "poll_interval_s": self.poll_interval_s,
                "poll_period_s": self.poll_period_s,
                "domains": [
                    {
                        "path": d.path,
                        "name": d.name,
                        "kind": d.kind,
                        "max_energy_range_uj": d.max_energy_range_uj,
                        "max_power_w": d.max_power_w,
                        "max_power_source": d.max_power_source,
                        "wrap_s": d.wrap_s,
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

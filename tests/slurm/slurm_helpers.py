"""Test helpers: a single-node SLURM cluster on localhost, and fake SLURM commands.

:class:`LocalSlurm` installs Debian's ``munge slurmctld slurmd slurm-client`` if missing
(apt-get, as root), writes ``slurm.conf`` with state and logs under a temp dir, starts
munged/slurmctld/slurmd in the foreground of their own processes (so their PIDs are
ours) and stops exactly those PIDs again. Facts from issue 6: SlurmctldHost=localhost,
NodeAddr=127.0.0.1, proctrack/linuxproc, task/affinity, select/cons_tres with
CR_Core_Memory, DefMemPerCPU, accounting_storage/none, munge key mode 0400, munge's
directory owned by ``munge``.

``slurm.conf`` must also be at ``/etc/slurm/slurm.conf`` while the cluster runs: the
plugin's jobstep strips ``SLURM_*`` variables (``SLURM_CONF`` among them) before its
nested ``srun``, which then only finds the default path. The file is written only if
absent and removed on stop; one left behind by a killed test run (our cluster name, and no
live daemon reads its directory) is removed before the next start, any other is left alone.

:func:`write_fake_slurm` writes shell stand-ins for sacct/sbatch/squeue/scontrol/sinfo
(case W1), whose behaviour the ``FAKE_*`` environment variables set.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SNAKEMAKE = str(VENV_BIN / "snakemake")
PACKAGES = ("munge", "slurmctld", "slurmd", "slurm-client")
BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo")
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
#: ClusterName of every LocalSlurm; marks a system slurm.conf as written by these tests.
TEST_CLUSTER = "greenpath-ci"
#: Job states in which a job still holds (or waits for) resources.
_ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED"}


def tiny_config(study: str = "slurm_ci") -> dict:
    """config/config.yaml cut down to digits (400 train / 100 val images), 1 seed, 2 epochs,
    interventions 0 and 1 (6 training jobs: trunk 0-1 and 1-2, freeze/quant at 0, 1)."""
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["study"] = study
    cfg["datasets"] = {"digits": {"subset": {"train": 400, "val": 100}}}
    cfg["seeds"] = [0]
    cfg["training"].update(epochs=2, device="cpu", num_threads=1)
    cfg["interventions"] = {"epochs": [0, 1], "methods": ["freeze", "quant", "stop"]}
    return cfg


def write_config(path: Path, cfg: dict) -> Path:
    """Write ``cfg`` as YAML to ``path``; return it."""
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def run_snakemake(
    args: list[str], cwd: Path, env: dict[str, str], timeout_s: float
) -> subprocess.CompletedProcess:
    """Run the venv's snakemake in the foreground under ``timeout -s INT`` (issue 6).

    A Snakemake in the background of a non-interactive script ignores SIGINT, so it stays
    in the foreground; ``timeout`` sends SIGINT (Snakemake cancels its SLURM jobs), then
    SIGKILL 20 s later. Returns the finished process (stdout and stderr merged).
    """
    cmd = ["timeout", "-s", "INT", "-k", "20", str(int(timeout_s)), SNAKEMAKE, *args]
    env = dict(env)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout_s + 40,
    )


class ClusterUnavailable(RuntimeError):
    """A local SLURM cluster cannot be started here; the message says why (-> skip)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _conf_settings(text: str) -> dict[str, str]:
    """``Key=value`` lines of a slurm.conf (first ``=`` splits; comments skipped)."""
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs if not k.lstrip().startswith("#")}


def _process_uses(path: Path) -> bool:
    """True when a running process has ``path`` (as text) in its command line."""
    needle = str(path).encode()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if needle in cmdline.read_bytes():
                return True
        except OSError:
            continue
    return False


def remove_leftover_conf() -> str | None:
    """Remove a ``/etc/slurm/slurm.conf`` that a killed test run left behind.

    It is ours when its ClusterName is :data:`TEST_CLUSTER`; it is left over when no
    running process names its cluster's ``slurm.conf`` (the daemons run with ``-f``). Its
    munge directory under the system temp folder goes too. Returns what was removed, or
    None when the file is absent, foreign or still in use.
    """
    if not SYSTEM_CONF.exists():
        return None
    settings = _conf_settings(SYSTEM_CONF.read_text(errors="replace"))
    state = settings.get("StateSaveLocation")
    if settings.get("ClusterName") != TEST_CLUSTER or not state:
        return None
    cluster_conf = Path(state).parent / "slurm.conf"
    if _process_uses(cluster_conf):
        return None
    SYSTEM_CONF.unlink()
    socket_path = settings.get("AuthInfo", "").removeprefix("socket=")
    munge_dir = Path(socket_path).parent if socket_path else None
    if munge_dir is not None and munge_dir.name.startswith("greenpath-munge-"):
        shutil.rmtree(munge_dir, ignore_errors=True)
    return f"removed {SYSTEM_CONF} left by a stopped test cluster ({cluster_conf})"


def why_not_runnable() -> str | None:
    """Reason a local cluster cannot run on this machine, or None when it can.

    A system slurm.conf is a real SLURM setup and blocks; call
    :func:`remove_leftover_conf` first to clear one a killed test run left behind.
    """
    if os.name != "posix" or os.geteuid() != 0:
        return "needs root to install and start munge/slurmctld/slurmd (not root)"
    if not all(shutil.which(b) for b in BINARIES) and not shutil.which("apt-get"):
        return "SLURM binaries missing and no apt-get to install Debian's packages"
    if SYSTEM_CONF.exists():
        return f"{SYSTEM_CONF} exists (a real SLURM setup); not touching it"
    return None


def install_packages(timeout_s: float = 240) -> None:
    """apt-get install the SLURM/munge packages if a binary is missing.

    Raises:
        ClusterUnavailable: apt-get failed (e.g. no network); message has its output.
    """
    if all(shutil.which(b) for b in BINARIES):
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=120)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0 or not all(shutil.which(b) for b in BINARIES):
        raise ClusterUnavailable(
            f"apt-get install {' '.join(PACKAGES)} failed: {(proc.stderr or proc.stdout)[-800:]}"
        )


class LocalSlurm:
    """A one-node SLURM cluster (node and controller = localhost) for tests.

    Args:
        root: empty directory for config, state, spool, munge socket and logs.
        cpus: CPUs of the node (default: this machine's).
        mem_mb: RealMemory of the node in MB (default: 80 % of this machine's).
    """

    def __init__(self, root: Path, cpus: int | None = None, mem_mb: int | None = None):
        self.root = Path(root)
        self.cpus = cpus or os.cpu_count() or 1
        if mem_mb is None:
            total_kb = int(
                next(
                    line.split()[1]
                    for line in Path("/proc/meminfo").read_text().splitlines()
                    if line.startswith("MemTotal:")
                )
            )
            mem_mb = int(total_kb / 1024 * 0.8)
        self.mem_mb = mem_mb
        self.conf = self.root / "slurm.conf"
        # munged runs as user munge and must reach its directory; pytest's temp dirs are
        # private to root, so munge gets its own directory directly under /tmp.
        self.munge_dir = Path(tempfile.mkdtemp(prefix="greenpath-munge-"))
        self.log_dir = self.root / "log"
        self.procs: dict[str, subprocess.Popen] = {}
        self._wrote_system_conf = False

    # --- configuration -------------------------------------------------------------
    def slurm_conf_text(self) -> str:
        """The slurm.conf of this cluster (state, spool and logs under ``root``)."""
        r = self.root
        def_mem = max(100, self.mem_mb // max(1, self.cpus) // 2)
        return textwrap.dedent(
            f"""\
            ClusterName={TEST_CLUSTER}
            SlurmctldHost=localhost
            SlurmctldPort={_free_port()}
            SlurmdPort={_free_port()}
            SlurmUser=root
            SlurmdUser=root
            AuthType=auth/munge
            CryptoType=crypto/munge
            AuthInfo=socket={self.munge_dir / "munge.socket"}
            StateSaveLocation={r / "state"}
            SlurmdSpoolDir={r / "spool"}
            SlurmctldPidFile={r / "slurmctld.pid"}
            SlurmdPidFile={r / "slurmd.pid"}
            SlurmctldLogFile={self.log_dir / "slurmctld.log"}
            SlurmdLogFile={self.log_dir / "slurmd.log"}
            SlurmctldDebug=info
            SlurmdDebug=info
            ProctrackType=proctrack/linuxproc
            TaskPlugin=task/affinity
            SelectType=select/cons_tres
            SelectTypeParameters=CR_Core_Memory
            AccountingStorageType=accounting_storage/none
            JobAcctGatherType=jobacct_gather/none
            JobCompType=jobcomp/none
            MpiDefault=none
            ReturnToService=2
            MinJobAge=300
            KillWait=2
            InactiveLimit=0
            NodeName=localhost NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.mem_mb} State=UNKNOWN
            PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP DefMemPerCPU={def_mem}
            """
        )

    def env(self) -> dict[str, str]:
        """Environment for client commands (sbatch, squeue, snakemake) of this cluster."""
        return dict(os.environ, SLURM_CONF=str(self.conf))

    # --- start / stop ----------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str]) -> None:
        out = open(self.log_dir / f"{name}.out", "wb")  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=self.env(), start_new_session=True
        )

    def _wait_for(self, what: str, check, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with {proc.returncode} while waiting for {what}:\n"
                        + self.tail(name)
                    )
            if check():
                return
            time.sleep(0.3)
        raise RuntimeError(f"timed out after {timeout_s} s waiting for {what}:\n{self.tail()}")

    def start(self, timeout_s: float = 60) -> LocalSlurm:
        """Write the config and start munged, slurmctld and slurmd; wait until idle."""
        remove_leftover_conf()
        if SYSTEM_CONF.exists():
            raise ClusterUnavailable(f"{SYSTEM_CONF} exists; refusing to overwrite it")
        for d in ("state", "spool", "log"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(self.slurm_conf_text())
        # munge: private key (mode 0400) and socket dir, both owned by user munge.
        key = self.munge_dir / "munge.key"
        key.write_bytes(os.urandom(1024))
        shutil.chown(self.munge_dir, "munge", "munge")
        shutil.chown(key, "munge", "munge")
        os.chmod(key, 0o400)
        os.chmod(self.munge_dir, 0o711)
        m = self.munge_dir
        self._spawn(
            "munged",
            [
                "setpriv",
                "--reuid=munge",
                "--regid=munge",
                "--clear-groups",
                "munged",
                "--foreground",
                f"--key-file={key}",
                f"--socket={m / 'munge.socket'}",
                f"--pid-file={m / 'munged.pid'}",
                f"--log-file={m / 'munged.log'}",
                f"--seed-file={m / 'munged.seed'}",
            ],
        )
        self._wait_for("munge socket", (m / "munge.socket").exists, 15)
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.conf, SYSTEM_CONF)
        self._wrote_system_conf = True
        self._spawn("slurmctld", ["slurmctld", "-D", "-f", str(self.conf)])
        self._spawn("slurmd", ["slurmd", "-D", "-f", str(self.conf)])
        self._wait_for("node localhost idle", self._node_idle, timeout_s)
        return self

    def _node_idle(self) -> bool:
        proc = subprocess.run(
            ["sinfo", "--noheader", "--format=%t"],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=10,
        )
        return proc.returncode == 0 and proc.stdout.strip() in ("idle", "mix", "alloc")

    def cancel_all(self, timeout_s: float = 30) -> None:
        """scancel every job of this cluster that has not ended; wait until none is active.

        slurmstepd daemonizes (parent 1, own session), so a job still running when
        slurmd stops would outlive it; cancelling first lets every step end.
        """
        try:
            active = [j for j, (_, st) in self.jobs().items() if st in _ACTIVE]
        except (subprocess.SubprocessError, OSError):
            return
        if active:
            subprocess.run(["scancel", *active], env=self.env(), capture_output=True, timeout=15)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if not any(st in _ACTIVE for _, st in self.jobs().values()):
                    return
            except (subprocess.SubprocessError, OSError):
                return
            time.sleep(0.5)

    def _stray_stepds(self, job_ids: set[str]) -> list[int]:
        """PIDs of slurmstepd processes serving this cluster's jobs (``slurmstepd: [ID.x]``)."""
        pids = []
        for proc_dir in Path("/proc").iterdir():
            if not proc_dir.name.isdigit():
                continue
            try:
                cmd = (proc_dir / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if cmd.startswith("slurmstepd: ["):
                jid = cmd[len("slurmstepd: [") :].split(".")[0].split("]")[0].split("_")[0]
                if jid in job_ids:
                    pids.append(int(proc_dir.name))
        return pids

    def stop(self) -> None:
        """Cancel our jobs, then stop the daemons this object started, by PID.

        SIGTERM, then SIGKILL after 15 s; finally SIGKILL any slurmstepd of our jobs that
        is still alive (PIDs found from their ``slurmstepd: [<job id>.<step>]`` title).
        """
        job_ids: set[str] = set()
        if self.procs.get("slurmctld") is not None and self.procs["slurmctld"].poll() is None:
            try:
                job_ids = {j.split("_")[0] for j in self.jobs()}
            except (subprocess.SubprocessError, OSError):
                pass
            self.cancel_all()
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        for pid in self._stray_stepds(job_ids):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self._wrote_system_conf and SYSTEM_CONF.exists():
            SYSTEM_CONF.unlink()
            self._wrote_system_conf = False
        shutil.rmtree(self.munge_dir, ignore_errors=True)

    def __enter__(self) -> LocalSlurm:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- inspection ----------------------------------------------------------------
    def tail(self, name: str | None = None, n: int = 30) -> str:
        """Last ``n`` lines of a daemon's output (or of every log)."""
        files = (
            [self.log_dir / f"{name}.out"]
            if name
            else sorted(self.log_dir.glob("*.out")) + sorted(self.log_dir.glob("*.log"))
        )
        parts = []
        for f in files:
            if f.exists():
                lines = f.read_text(errors="replace").splitlines()[-n:]
                parts.append(f"--- {f.name}\n" + "\n".join(lines))
        return "\n".join(parts)

    def jobs(self) -> dict[str, tuple[str, str]]:
        """Job id -> (name, state) of every job slurmctld still knows (``squeue --states=all``)."""
        proc = subprocess.run(
            ["squeue", "--states=all", "--noheader", "--format=%i|%j|%T"],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=15,
            check=True,
        )
        out = {}
        for line in proc.stdout.splitlines():
            jid, name, state = line.strip().split("|")
            out[jid] = (name, state)
        return out


# --------------------------------------------------------------------------------------
# Fake SLURM commands for case W1.
_FAKES = {
    # sacct as on a cluster without slurmdbd; every call is logged.
    "sacct": r"""
        echo "sacct $*" >> "$FAKE_SLURM_DIR/calls.log"
        echo "Slurm accounting storage is disabled"
        exit 1
    """,
    # sbatch: --version answers; a submission logs its arguments, creates the files
    # listed in FAKE_TOUCH (the "job" ran) and prints a new job id (--parsable).
    "sbatch": r"""
        if [ "$1" = "--version" ]; then echo "slurm 22.05.8"; exit 0; fi
        echo "sbatch $*" >> "$FAKE_SLURM_DIR/calls.log"
        n=$(cat "$FAKE_SLURM_DIR/next_id" 2>/dev/null || echo 100)
        echo $((n + 1)) > "$FAKE_SLURM_DIR/next_id"
        echo "$n" >> "$FAKE_SLURM_DIR/submitted"
        for f in $FAKE_TOUCH; do mkdir -p "$(dirname "$f")"; : > "$f"; done
        echo "$n"
    """,
    # squeue: the pre-flight probe (job name greenpath-preflight-probe) gets an empty
    # answer; the first FAKE_SQUEUE_EMPTY status queries print nothing (job not yet
    # listed), later ones "<id>|$FAKE_SQUEUE_STATE" for every submitted job.
    "squeue": r"""
        case "$*" in *greenpath-preflight-probe*) exit 0;; esac
        echo "squeue $*" >> "$FAKE_SLURM_DIR/calls.log"
        c=$(( $(cat "$FAKE_SLURM_DIR/squeue_count" 2>/dev/null || echo 0) + 1 ))
        echo $c > "$FAKE_SLURM_DIR/squeue_count"
        if [ "$c" -le "${FAKE_SQUEUE_EMPTY:-0}" ]; then exit 0; fi
        if [ -f "$FAKE_SLURM_DIR/submitted" ]; then
          while read -r id; do echo "$id|${FAKE_SQUEUE_STATE:-COMPLETED}"; done < "$FAKE_SLURM_DIR/submitted"
        fi
    """,
    # scontrol show config: MinJobAge from FAKE_MIN_JOB_AGE, or a failure when unset.
    "scontrol": r"""
        if [ -z "${FAKE_MIN_JOB_AGE:-}" ]; then echo "scontrol: error: no controller" >&2; exit 1; fi
        echo "MaxArraySize            = 1001"
        echo "MinJobAge               = ${FAKE_MIN_JOB_AGE} sec"
    """,
    # sinfo: one default partition "debug" without GPUs.
    "sinfo": r"""
        case "$*" in
          *%G*) echo "debug*|(null)";;
          *) echo "PARTITION"; echo "debug*";;
        esac
    """,
}


def write_fake_slurm(bin_dir: Path) -> Path:
    """Write the fake SLURM commands into ``bin_dir`` (created); return it."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, body in _FAKES.items():
        path = bin_dir / name
        path.write_text("#!/bin/sh\n" + textwrap.dedent(body).lstrip())
        path.chmod(0o755)
    return bin_dir


def start_snakemake(
    args: list[str], cwd: Path, env: dict[str, str], timeout_s: float, log: Path
) -> subprocess.Popen:
    """Like :func:`run_snakemake` but returns at once; output goes to ``log``.

    The process is a direct child (not a shell's background job), so SIGINT reaches it.
    """
    cmd = ["timeout", "-s", "INT", "-k", "20", str(int(timeout_s)), SNAKEMAKE, *args]
    env = dict(env)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    out = open(log, "w")  # noqa: SIM115 - closed by the caller via the process
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)

"""A warm process that forks training jobs, so a job does not pay torch's import again.

Every training job is its own process (Snakemake schedules processes), and most of a short
job's wall time is the interpreter importing torch, ``torch._dynamo`` (imported by every
``torch.optim`` optimizer's first step), pandas and pyarrow. The first job on a machine
starts one server process that imports all that once and listens on a Unix socket; each
job's lean client (``python -m greenpath.training.job``, stdlib only) connects, hands over
its command line, working folder, environment and stdout/stderr, and the server forks a
child that runs the job exactly as the client would have in-process. The client relays
SIGTERM/SIGINT to the child and exits with its exit status; a child whose client goes
away (killed) gets SIGTERM. Nothing else changes: the
child sets every RNG state from the job's checkpoint or seed, reads the client's
environment (``CUDA_VISIBLE_DEVICES`` included: the server never initialises CUDA) and
opens its own log and meter.

The socket lives in Linux's abstract namespace, so it leaves no file behind (nothing in the
temporary folder, also after a kill); the server serves only clients of its own user
(``SO_PEERCRED``). Its name is keyed on the Python executable, the user and the greenpath
source files (paths, sizes and modification times), so edited code never runs in an old
server. Only one server can bind a name, so concurrent first jobs start one server between
them. The server exits after :data:`IDLE_S` seconds without a job. It is not used (the job runs
in its own process) when ``GREENPATH_FORKSERVER=0``, inside a SLURM job (``SLURM_JOB_ID``:
a server started in one job's cgroup must not run another job's work), or where the
platform has no ``fork`` or Unix sockets.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

#: Seconds the server waits for the next job before it exits.
IDLE_S = 120.0
#: Seconds a client waits for a server it started to listen.
START_TIMEOUT_S = 600.0
_HEADER = struct.Struct("!I")


def enabled() -> bool:
    """True where jobs go through the server (see the module docstring)."""
    return (
        os.environ.get("GREENPATH_FORKSERVER", "1") != "0"
        and "SLURM_JOB_ID" not in os.environ
        and hasattr(os, "fork")
        and hasattr(socket, "AF_UNIX")
        and hasattr(socket, "send_fds")
        and hasattr(socket, "SO_PEERCRED")
    )


def socket_name() -> str:
    """The server's abstract socket name (without the leading NUL) for this Python, user and
    greenpath source tree."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(f"{sys.executable}\0{root}".encode())
    for p in sorted(root.rglob("*.py")):
        st = p.stat()
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return f"greenpath-forkserver-{os.getuid()}-{h.hexdigest()[:16]}"


def _send(sock: socket.socket, obj: object, fds: list[int] | None = None) -> None:
    data = json.dumps(obj).encode()
    msg = _HEADER.pack(len(data)) + data
    if fds:
        socket.send_fds(sock, [msg], fds)
    else:
        sock.sendall(msg)


def _recv_exact(sock: socket.socket, n: int, buf: bytes = b"") -> bytes:
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("the other side closed the connection")
        buf += chunk
    return buf


def _recv(sock: socket.socket, with_fds: bool = False) -> tuple[object, list[int]]:
    fds: list[int] = []
    if with_fds:
        first, fds, _, _ = socket.recv_fds(sock, 1 << 16, 4)
        if not first:
            raise ConnectionError("the other side closed the connection")
    else:
        first = b""
    head = _recv_exact(sock, _HEADER.size, first)
    (n,) = _HEADER.unpack(head[: _HEADER.size])
    body = _recv_exact(sock, n, head[_HEADER.size :])
    return json.loads(body[:n]), fds


# ----------------------------------------------------------------------------- client


def _connect(name: str) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect("\0" + name)
    except OSError:
        sock.close()
        return None
    return sock


def _start_server(name: str) -> socket.socket:
    """Connect to the server called ``name``, starting it if needed. Concurrent callers may
    each start one; the first to bind the name serves, the others exit at once.

    Raises:
        RuntimeError: the server did not start listening (its exit status is named).
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "greenpath.training.forkserver", name],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        sock = _connect(name)
        if sock is not None:
            return sock
        if proc.poll() is not None and (sock := _connect(name)) is None:
            raise RuntimeError(f"training fork server exited with {proc.returncode}")
        if sock is not None:
            return sock
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"training fork server not listening after {START_TIMEOUT_S} s")


class ServerUnavailable(RuntimeError):
    """No server could be started or reached; nothing of the job has run."""


def run_via_server(argv: list[str]) -> int:
    """Run ``python -m greenpath.training.job <argv>`` in a child of the server; its exit
    status. SIGTERM and SIGINT to this process are relayed to the child.

    Raises:
        ServerUnavailable: no server could be started or reached (the job did not start).
    """
    try:
        name = socket_name()
        sock = _connect(name) or _start_server(name)
        request = {"argv": list(argv), "cwd": os.getcwd(), "env": dict(os.environ)}
        _send(sock, request, [sys.stdout.fileno(), sys.stderr.fileno()])
        reply, _ = _recv(sock)
        pid = int(reply["pid"])  # type: ignore[index]
    except (OSError, ConnectionError, RuntimeError, ValueError) as exc:
        raise ServerUnavailable(str(exc)) from exc
    with sock:

        def relay(signum: int, frame: object) -> None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

        signal.signal(signal.SIGTERM, relay)
        signal.signal(signal.SIGINT, relay)
        try:
            reply, _ = _recv(sock)
        except ConnectionError:
            print(f"training job (pid {pid}) ended without an exit status", file=sys.stderr)
            return 1
        return int(reply["status"])  # type: ignore[index]


# ----------------------------------------------------------------------------- server


def _end_with_client(conn: socket.socket) -> None:
    """SIGTERM the job when its client goes away (the client sends nothing after the
    request, so ``recv`` returns only when the connection closes)."""
    with contextlib.suppress(OSError):
        conn.recv(1)
    os.kill(os.getpid(), signal.SIGTERM)


def _child(conn: socket.socket, request: dict, fds: list[int]) -> None:
    """In the forked child: become the job's process, run it, report its status, exit."""
    os.dup2(fds[0], 1)
    os.dup2(fds[1], 2)
    for fd in fds:
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    tempfile.tempdir = None  # the job's TMPDIR, not the one the server's imports cached
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    from greenpath.training import job

    signal.signal(signal.SIGTERM, job.on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _send(conn, {"pid": os.getpid()})
    threading.Thread(target=_end_with_client, args=(conn,), daemon=True).start()
    status = 1
    try:
        status = job.run_here(request["argv"])
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - the job's traceback goes to its stderr
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        with contextlib.suppress(OSError):
            _send(conn, {"status": status})
        os._exit(status)


def _same_user(conn: socket.socket) -> bool:
    """Whether the peer of ``conn`` runs as this process's user (``SO_PEERCRED``)."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", creds)
    return uid == os.getuid()


def _preload() -> None:
    """Import what every job needs, once, before the first fork (never CUDA)."""
    import torch
    import torch._dynamo  # noqa: F401 - every optimizer's first step imports it

    import greenpath.energy  # noqa: F401
    import greenpath.records  # noqa: F401
    import greenpath.training.engine  # noqa: F401
    import greenpath.training.job  # noqa: F401

    del torch


def serve(name: str, idle_s: float = IDLE_S) -> int:
    """Bind the abstract socket ``name``, import what jobs need, and fork one child per job
    of this user until idle for ``idle_s`` seconds. Returns 0, or 1 when another server
    already holds the name."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind("\0" + name)
    except OSError:
        return 1  # another server got there first; clients connect to it
    server.listen(16)
    _preload()
    server.settimeout(idle_s)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped automatically
    with server:
        while True:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                return 0
            with conn:
                conn.settimeout(None)
                if not _same_user(conn):
                    continue
                try:
                    request, fds = _recv(conn, with_fds=True)
                except (ConnectionError, ValueError):
                    continue
                if os.fork() == 0:
                    server.close()
                    _child(conn, request, fds)  # type: ignore[arg-type]
                for fd in fds:
                    os.close(fd)


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1]))

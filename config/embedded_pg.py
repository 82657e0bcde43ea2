"""The embedded PostgreSQL used when DATABASE_URL is unset (the `pgserver` package).

pgserver stops the server when the last Python process that asked for it exits, so every
process (web, worker, beat, tests, the `make run` launcher) asks for it through `database_url()`.
That bookkeeping is a list of process ids in the data directory, and a process killed without
running its exit handlers stays in it for good (the server is then never stopped): the launcher
that owns the server's lifetime (`runstack`) therefore stops it explicitly with `server_stop()`.
The data directory lives under `.data/pg` (`DATA_DIR`; short path: Unix socket paths are limited
to about 107 bytes). The server starts with settings sized for the machine (`config/pg_tuning.py`),
written before each start, and once more right after the first `initdb`.
"""

from __future__ import annotations

import atexit
import logging
import os
import subprocess
import warnings
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config import pg_tuning

_server = None


def pg_dir(data_dir: Path) -> Path:
    return data_dir / "pg"


def _import_pgserver():
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")  # noqa: S108 - platformdirs warns without it
    warnings.filterwarnings("ignore", module="platformdirs")
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    try:
        import pgserver  # only when the embedded server is used: with DATABASE_URL set it is never loaded
    except ImportError as exc:  # pragma: no cover - pgserver is a hard dependency
        raise ImproperlyConfigured(
            "DATABASE_URL is unset and the embedded PostgreSQL (pgserver) is not installed. "
            "Run `make run` or `pip install -e .`, or set DATABASE_URL."
        ) from exc
    return pgserver


def database_url(data_dir: Path) -> str:
    """Start (or join) the embedded server and return a postgresql:// URL for it."""
    global _server
    path = pg_dir(data_dir)
    if _server is None:
        pgserver = _import_pgserver()
        path.mkdir(parents=True, exist_ok=True)
        socket_path = path / ".s.PGSQL.5432"
        if len(str(socket_path)) > 100:
            raise ImproperlyConfigured(
                f"The embedded PostgreSQL socket path {socket_path} is too long for a Unix socket; "
                "move the checkout (or DATA_DIR) to a shorter path or set DATABASE_URL."
            )
        fresh = not (path / "PG_VERSION").exists()
        if not fresh and not server_running(path):
            pg_tuning.write_conf(path)  # read by the start just below
        _server = pgserver.get_server(str(path), cleanup_mode="stop")
        if fresh:  # initialised just now with the defaults: size it and restart it, once
            pg_tuning.write_conf(path)
            server_stop(path, forget_handles=False)
            server_start(path)
    return f"postgresql://postgres:@/postgres?host={path}"


def _system_user() -> str | None:
    # pgserver runs the server as a `pgserver` system user when started by root.
    return "pgserver" if os.geteuid() == 0 else None


def server_running(path: Path) -> bool:
    """Whether a postmaster for the data directory `path` is alive (its postmaster.pid names a live
    process)."""
    pid_file = path / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pg_ctl(path: Path, args: list[str]) -> None:
    _import_pgserver()
    from pgserver._commands import POSTGRES_BIN_PATH  # after _import_pgserver's set-up, as pgserver is

    subprocess.run(
        [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(path), *args],
        check=True,
        user=_system_user(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=60,
    )


def server_stop(path: Path, *, forget_handles: bool = True) -> None:
    """Stop the server of the data directory `path` now (fast shutdown: open sessions are ended), and
    (unless told not to: a restart) forget every process handle pgserver recorded, so no exit handler
    tries again."""
    global _server
    if forget_handles and _server is not None and Path(_server.pgdata) == path.resolve():
        atexit.unregister(_server._cleanup)
        _server = None
    if server_running(path):
        _pg_ctl(path, ["-w", "-m", "fast", "stop"])
    if forget_handles:
        (path / ".handle_pids.json").unlink(missing_ok=True)


def server_start(path: Path) -> None:
    """Start the (already initialised) server of the data directory `path` again, as pgserver does:
    no TCP listener, the Unix socket inside the data directory."""
    if not server_running(path):
        pg_tuning.write_conf(path)
        _pg_ctl(path, ["-w", "-o", '-h ""', "-o", f"-k {path}", "-l", str(path / "log"), "start"])

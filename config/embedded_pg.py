"""The embedded PostgreSQL used when DATABASE_URL is unset (the `pgserver` package).

pgserver stops the server when the last Python process that asked for it exits, so every
process (web, worker, beat, tests, the `make run` launcher) asks for it through `database_url()`.
The data directory lives under `.data/pg` in the project (short path: Unix socket paths are
limited to about 107 bytes).
"""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_server = None


def data_dir(base_dir: Path) -> Path:
    return base_dir / ".data" / "pg"


def database_url(base_dir: Path) -> str:
    """Start (or join) the embedded server and return a postgresql:// URL for it."""
    global _server
    if _server is None:
        import logging
        import os
        import warnings

        os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")  # noqa: S108 - platformdirs warns without it
        warnings.filterwarnings("ignore", module="platformdirs")
        logging.getLogger("pgserver").setLevel(logging.WARNING)
        try:
            import pgserver
        except ImportError as exc:  # pragma: no cover - pgserver is a hard dependency
            raise ImproperlyConfigured(
                "DATABASE_URL is unset and the embedded PostgreSQL (pgserver) is not installed. "
                "Run `make run` or `pip install -e .`, or set DATABASE_URL."
            ) from exc
        path = data_dir(base_dir)
        path.mkdir(parents=True, exist_ok=True)
        socket_path = path / ".s.PGSQL.5432"
        if len(str(socket_path)) > 100:
            raise ImproperlyConfigured(
                f"The embedded PostgreSQL socket path {socket_path} is too long for a Unix socket; "
                "move the checkout to a shorter path or set DATABASE_URL."
            )
        _server = pgserver.get_server(str(path), cleanup_mode="stop")
    return f"postgresql://postgres:@/postgres?host={data_dir(base_dir)}"

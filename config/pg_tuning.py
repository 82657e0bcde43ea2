"""Server settings for the embedded PostgreSQL, sized for the machine it runs on.

PostgreSQL's defaults (128 MB of shared buffers, 1 GB of WAL between checkpoints, no WAL compression)
fit a laptop of 2005: the indexes of a large `metering_event` then do not stay in memory, and a
checkpoint every few seconds under ingest writes every touched index page into the WAL again (full-page
writes). `settings_for` derives the usual settings from the memory and cores available to this process
(a container's cgroup limits count); `write_conf` writes them into `meterline.conf` in the data
directory, included from `postgresql.conf`, before the server starts. `EMBEDDED_PG_MEMORY_MB` sets the
memory the sizing assumes (for a machine shared with other services). A server given by `DATABASE_URL`
is never touched: its operator sizes it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

MB = 1024 * 1024
GB = 1024 * MB
CONF_NAME = "meterline.conf"
INCLUDE_LINE = f"include_if_exists = '{CONF_NAME}'"
MAX_CONNECTIONS = 100  # PostgreSQL's default, kept: work_mem is sized per connection below


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def _cgroup_memory() -> int | None:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(path).read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < 1 << 60:  # v1 writes a huge number for "no limit"
            return int(raw)
    return None


def machine_memory() -> int:
    """Bytes of memory this process may use: `EMBEDDED_PG_MEMORY_MB`, else the smaller of the physical
    memory and the cgroup limit."""
    configured = os.environ.get("EMBEDDED_PG_MEMORY_MB", "").strip()
    if configured:
        return int(configured) * MB
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    limit = _cgroup_memory()
    return min(physical, limit) if limit else physical


def machine_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _mb(n: int) -> str:
    return f"{n // MB}MB"


def settings_for(*, memory: int, cores: int, disk_free: int) -> dict[str, str]:
    """The server settings for a machine with `memory` bytes, `cores` CPUs and `disk_free` bytes free
    where the data directory lives (the common PGTune-style rules for a mixed workload on SSD)."""
    shared_buffers = _clamp(memory // 4, 128 * MB, 8 * GB)
    per_gather = _clamp(cores // 2, 1, 4)
    work_mem = _clamp((memory - shared_buffers) // (MAX_CONNECTIONS * 3) // per_gather, 4 * MB, 64 * MB)
    # WAL between checkpoints: fewer full-page writes under sustained ingest, within a tenth of the disk
    max_wal = _clamp(disk_free // 10, 1 * GB, 8 * GB)
    return {
        "shared_buffers": _mb(shared_buffers),
        "effective_cache_size": _mb(max(memory * 3 // 4, 2 * shared_buffers)),
        "maintenance_work_mem": _mb(_clamp(memory // 16, 64 * MB, 2 * GB)),
        "work_mem": _mb(work_mem),
        "wal_buffers": "16MB",
        "wal_compression": "on",  # pglz: the only method every build has (pgserver's has neither lz4 nor zstd)
        "max_wal_size": _mb(max_wal),
        "min_wal_size": _mb(max_wal // 4),
        "checkpoint_timeout": "15min",
        "checkpoint_completion_target": "0.9",
        "random_page_cost": "1.1",
        "effective_io_concurrency": "200",
        "max_worker_processes": str(max(8, cores)),
        "max_parallel_workers": str(cores),
        "max_parallel_workers_per_gather": str(per_gather),
        "max_parallel_maintenance_workers": str(per_gather),
        "max_connections": str(MAX_CONNECTIONS),
    }


def machine_settings(data_dir: Path) -> dict[str, str]:
    return settings_for(
        memory=machine_memory(), cores=machine_cores(), disk_free=shutil.disk_usage(data_dir).free
    )


def write_conf(data_dir: Path) -> dict[str, str]:
    """Write this machine's settings into the data directory (read at the server's next start) and
    include them from `postgresql.conf` once. Returns the settings written."""
    values = machine_settings(data_dir)
    body = "# Written by meterline at each start of the embedded server (config/pg_tuning.py).\n"
    body += "".join(f"{name} = '{value}'\n" for name, value in values.items())
    conf = data_dir / CONF_NAME
    conf.write_text(body)
    main = data_dir / "postgresql.conf"
    text = main.read_text()
    if INCLUDE_LINE not in text:
        main.write_text(text.rstrip("\n") + f"\n{INCLUDE_LINE}\n")
    _give_to_server_user(conf, data_dir)
    return values


def _give_to_server_user(conf: Path, data_dir: Path) -> None:
    """Started as root, the server runs as the data directory's owner (pgserver's `pgserver` user)."""
    if os.geteuid() == 0:
        st = data_dir.stat()
        os.chown(conf, st.st_uid, st.st_gid)

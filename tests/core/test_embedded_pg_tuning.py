"""The embedded PostgreSQL starts with settings sized for the machine (config/pg_tuning.py): the sizing
rules, worked out by hand for two machines, and a real embedded server started in a fresh data
directory that reports them, also after a restart with another memory budget."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest

from config import embedded_pg, pg_tuning

GB = 1024**3
MB = 1024**2
UNIT_BYTES = {"8kB": 8192, "kB": 1024, "MB": MB, None: 1}


def test_sizing_of_a_16_gb_8_core_machine():
    s = pg_tuning.settings_for(memory=16 * GB, cores=8, disk_free=100 * GB)
    assert s["shared_buffers"] == "4096MB"  # a quarter of memory
    assert s["effective_cache_size"] == "12288MB"  # three quarters
    assert s["maintenance_work_mem"] == "1024MB"  # a sixteenth
    assert s["work_mem"] == "10MB"  # (16 GB - 4 GB) / (100 connections x 3) / 4 workers per gather
    assert s["max_wal_size"] == "8192MB"  # a tenth of the free disk, at most 8 GB
    assert s["min_wal_size"] == "2048MB"
    assert s["wal_compression"] == "on"
    assert s["max_parallel_workers"] == "8" and s["max_parallel_workers_per_gather"] == "4"
    assert s["max_worker_processes"] == "8"


def test_sizing_of_a_small_machine_keeps_the_floors():
    s = pg_tuning.settings_for(memory=1 * GB, cores=1, disk_free=5 * GB)
    assert s["shared_buffers"] == "256MB"
    assert s["effective_cache_size"] == "768MB"
    assert s["maintenance_work_mem"] == "64MB"  # floor
    assert s["work_mem"] == "4MB"  # 768 MB / 300 = 2.5 MB, raised to the floor
    assert s["max_wal_size"] == "1024MB"  # a tenth of 5 GB is below the 1 GB floor
    assert s["max_parallel_workers_per_gather"] == "1"


def test_memory_budget_from_the_environment(monkeypatch):
    monkeypatch.setenv("EMBEDDED_PG_MEMORY_MB", "3072")
    assert pg_tuning.machine_memory() == 3 * GB
    monkeypatch.delenv("EMBEDDED_PG_MEMORY_MB")
    assert pg_tuning.machine_memory() > 256 * MB


def _server_settings(pg: Path, names: list[str]) -> dict[str, int | str]:
    with psycopg.connect(host=str(pg), user="postgres", dbname="postgres") as conn:
        rows = conn.execute(
            "SELECT name, setting, unit, vartype FROM pg_settings WHERE name = ANY(%s)", [names]
        ).fetchall()
    out: dict[str, int | str] = {}
    for name, setting, unit, vartype in rows:
        out[name] = (
            int(setting) * UNIT_BYTES[unit] if vartype == "integer" and unit in UNIT_BYTES else setting
        )
    return out


def _expected(pg: Path, names: list[str]) -> dict[str, int | str]:
    conf = (pg / pg_tuning.CONF_NAME).read_text()
    values = dict(line.split(" = ", 1) for line in conf.splitlines() if line and not line.startswith("#"))
    out: dict[str, int | str] = {}
    for name in names:
        raw = values[name].strip("'")
        out[name] = int(raw[:-2]) * MB if raw.endswith("MB") else raw
    return out


@pytest.fixture
def data_dir(monkeypatch):
    monkeypatch.setattr(embedded_pg, "_server", None)  # this process uses DATABASE_URL; start another
    path = Path(tempfile.mkdtemp(prefix="ml-", dir="/tmp"))  # short: the Unix socket lives inside
    yield path
    pg = embedded_pg.pg_dir(path)
    if embedded_pg.server_running(pg):
        embedded_pg.server_stop(pg)
    shutil.rmtree(path, ignore_errors=True)


def test_embedded_server_runs_with_the_machine_settings(data_dir, monkeypatch):
    monkeypatch.setenv("EMBEDDED_PG_MEMORY_MB", "2048")
    embedded_pg.database_url(data_dir)
    pg = embedded_pg.pg_dir(data_dir)
    names = ["shared_buffers", "effective_cache_size", "max_wal_size", "work_mem", "maintenance_work_mem"]
    running = _server_settings(pg, [*names, "wal_compression", "checkpoint_timeout"])
    assert running["shared_buffers"] == 512 * MB  # a quarter of the 2 GB budget, not the 128 MB default
    assert running["effective_cache_size"] == 1536 * MB
    assert running["maintenance_work_mem"] == 128 * MB
    assert running["wal_compression"] == "pglz"
    assert running["checkpoint_timeout"] == "900"
    assert {n: running[n] for n in names} == _expected(pg, names)

    # stopped and started again (as `make run` does after a crash) with another budget: re-sized
    embedded_pg.server_stop(pg, forget_handles=False)
    monkeypatch.setenv("EMBEDDED_PG_MEMORY_MB", "4096")
    embedded_pg.server_start(pg)
    again = _server_settings(pg, names)
    assert again["shared_buffers"] == 1024 * MB
    assert again == _expected(pg, names)

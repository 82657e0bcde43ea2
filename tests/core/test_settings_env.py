import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config import env

ROOT = Path(__file__).resolve().parents[2]


def test_bool_parses_and_rejects(monkeypatch):
    monkeypatch.setenv("X_FLAG", "yes")
    assert env.env_bool("X_FLAG") is True
    monkeypatch.setenv("X_FLAG", "0")
    assert env.env_bool("X_FLAG", True) is False
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG='maybe' is not a boolean"):
        env.env_bool("X_FLAG")


def test_int_names_the_variable(monkeypatch):
    monkeypatch.setenv("X_NUM", "ten")
    with pytest.raises(ImproperlyConfigured, match="X_NUM='ten' is not an integer"):
        env.env_int("X_NUM", 1)
    monkeypatch.setenv("X_NUM", "0")
    with pytest.raises(ImproperlyConfigured, match="X_NUM=0 must be at least 1"):
        env.env_int("X_NUM", 1, minimum=1)
    monkeypatch.delenv("X_NUM")
    assert env.env_int("X_NUM", 7) == 7


def test_choice_and_list_and_required(monkeypatch):
    monkeypatch.setenv("X_LEVEL", "LOUD")
    with pytest.raises(ImproperlyConfigured, match="X_LEVEL='LOUD' must be one of: INFO, DEBUG"):
        env.env_choice("X_LEVEL", "INFO", ["INFO", "DEBUG"])
    monkeypatch.setenv("X_LIST", "a, b,,c")
    assert env.env_list("X_LIST") == ["a", "b", "c"]
    monkeypatch.delenv("X_REQ", raising=False)
    with pytest.raises(ImproperlyConfigured, match="X_REQ is required"):
        env.env_str("X_REQ", required=True)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG='maybe' is not a boolean"),
        ("INGEST_MAX_BODY_BYTES", "lots", "INGEST_MAX_BODY_BYTES='lots' is not an integer"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL='LOUD' must be one of"),
        ("DATABASE_URL", "mysql://x@y/z", "must be a postgresql:// URL"),
        ("INVOICE_CLOCK_SECONDS", "0", "INVOICE_CLOCK_SECONDS=0 must be at least 1"),
        ("INVOICE_CLOCK_SECONDS", "5m", "INVOICE_CLOCK_SECONDS='5m' is not an integer"),
        ("DRAIN_LANES", "9", "DRAIN_LANES=9 must be at most 8"),
        ("DRAIN_LANES", "0", "DRAIN_LANES=0 must be at least 1"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(name, value, message):
    environ = dict(os.environ, **{name: value})
    if name != "DATABASE_URL":
        environ["DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"  # never connected by `check`
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert message in result.stderr


def test_env_example_lists_every_variable_the_settings_read():
    import re

    read = set(
        re.findall(
            r'env_(?:str|bool|int|list|choice)\("([A-Z_]+)"', (ROOT / "config/settings.py").read_text()
        )
    )
    documented = set(re.findall(r"^#?\s*([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    readme = (ROOT / "README.md").read_text()
    assert read <= documented, f"missing from .env.example: {sorted(read - documented)}"
    assert all(f"`{name}`" in readme for name in read), [n for n in read if f"`{n}`" not in readme]


def _settings_with(monkeypatch, **environ: str | None) -> dict:
    """config/settings.py executed afresh with these variables (None: unset); the running settings stay."""
    import runpy

    for name, value in environ.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "config/settings.py"))


@pytest.mark.parametrize(
    ("value", "interval", "expires"), [(None, 300, 290), ("86400", 86400, 86390), ("5", 5, 1)]
)
def test_the_invoice_clock_runs_every_invoice_clock_seconds(monkeypatch, value, interval, expires):
    entry = _settings_with(monkeypatch, INVOICE_CLOCK_SECONDS=value)["CELERY_BEAT_SCHEDULE"][
        "invoicing-invoice-clock"
    ]
    assert entry["task"] == "invoicing.tasks.invoice_clock"
    assert entry["schedule"] == interval
    # gone before the next run is due
    assert entry["options"] == {"expire_seconds": expires, "queue": "billing"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "Environment variable INVOICE_CLOCK_SECONDS=0 must be at least 1."),
        ("-300", "Environment variable INVOICE_CLOCK_SECONDS=-300 must be at least 1."),
        ("five", "Environment variable INVOICE_CLOCK_SECONDS='five' is not an integer."),
    ],
)
def test_a_bad_invoice_clock_interval_is_refused_naming_the_variable(monkeypatch, value, message):
    with pytest.raises(ImproperlyConfigured) as refused:
        _settings_with(monkeypatch, INVOICE_CLOCK_SECONDS=value)
    assert str(refused.value) == message

"""The installation's secrets: Django's SECRET_KEY and the key that encrypts stored credentials.

Each is resolved in this order:

1. the environment variable (`SECRET_KEY`, `FIELD_ENCRYPTION_KEY`);
2. a key file in the data directory (`.data/secret_key`, `.data/field_encryption_key`, mode 0600),
   generated on first start of a local installation (embedded PostgreSQL: `make run`), so every process
   of that installation (web, worker, beat, management commands) shares it;
3. only in the development/test setting (`DEBUG=true` or `MET_ALLOW_INSECURE_SECRET=true`), a public
   development key.

Anything else stops start-up with a message naming what to set. The public development keys are
refused outside the development/test setting even when given explicitly.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

# Public, in the source: anyone can sign sessions and portal tokens with these. Development only.
DEVELOPMENT_SECRET_KEY = "insecure-development-key-set-SECRET_KEY-in-production"
DEVELOPMENT_FIELD_ENCRYPTION_KEY = base64.urlsafe_b64encode(b"meterline-public-development-key").decode()

SECRET_KEY_FILE = "secret_key"
FIELD_ENCRYPTION_KEY_FILE = "field_encryption_key"
MIN_SECRET_KEY_LENGTH = 32


def new_secret_key() -> str:
    return secrets.token_urlsafe(50)


def new_field_encryption_key() -> str:
    """A Fernet key: 32 random bytes, URL-safe base64."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def read_key_file(path: Path) -> str | None:
    """The key kept in `path`, or None when there is none. Refuses a file other users can read."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ImproperlyConfigured(f"The key file {path} is readable by other users; run `chmod 600 {path}`.")
    value = path.read_text().strip()
    if not value:
        raise ImproperlyConfigured(f"The key file {path} is empty; delete it to generate a new key.")
    return value


def read_or_create_key_file(path: Path, generate: Callable[[], str]) -> str:
    """The key in `path`, creating it (mode 0600) when missing. Safe when several processes start at once:
    the file appears complete or not at all (written aside, then hard-linked into place)."""
    existing = read_key_file(path)
    if existing is not None:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(generate() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        # FileExistsError: another process of this installation won the race; use its key.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    value = read_key_file(path)
    assert value is not None
    return value


def _refusal(name: str, file: Path, create_local: bool) -> ImproperlyConfigured:
    return ImproperlyConfigured(
        f"Environment variable {name} is not set and there is no key file {file}. "
        + (
            ""
            if create_local
            else "With an external database (DATABASE_URL) every host must share the same key: set "
            f"{name} in the environment. "
        )
        + "For local development only, DEBUG=true or MET_ALLOW_INSECURE_SECRET=true allow the public "
        "development key."
    )


def resolve_secret_key(
    *, environ_value: str | None, data_dir: Path, create_local: bool, allow_development: bool
) -> str:
    if environ_value:
        if not allow_development:
            if environ_value == DEVELOPMENT_SECRET_KEY:
                raise ImproperlyConfigured(
                    "SECRET_KEY is the public development key; anyone can forge sessions and portal "
                    'tokens with it. Set a random SECRET_KEY (e.g. `python -c "import secrets; '
                    "print(secrets.token_urlsafe(50))\"`), or unset it to use the installation's key file."
                )
            if len(environ_value) < MIN_SECRET_KEY_LENGTH:
                raise ImproperlyConfigured(
                    f"SECRET_KEY is {len(environ_value)} characters long; use at least "
                    f"{MIN_SECRET_KEY_LENGTH} random characters."
                )
        return environ_value
    path = data_dir / SECRET_KEY_FILE
    value = read_or_create_key_file(path, new_secret_key) if create_local else read_key_file(path)
    if value is not None:
        return value
    if allow_development:
        return DEVELOPMENT_SECRET_KEY
    raise _refusal("SECRET_KEY", path, create_local)


def resolve_field_encryption_keys(
    *, environ_value: str | None, data_dir: Path, create_local: bool, allow_development: bool
) -> list[str]:
    """The Fernet keys, newest first: the first encrypts, every one decrypts (rotation: prepend a new key,
    run `manage.py secrets_reencrypt`, then drop the old one)."""
    if environ_value:
        keys = [k.strip() for k in environ_value.split(",") if k.strip()]
        source = "Environment variable FIELD_ENCRYPTION_KEY"
    else:
        path = data_dir / FIELD_ENCRYPTION_KEY_FILE
        value = (
            read_or_create_key_file(path, new_field_encryption_key) if create_local else read_key_file(path)
        )
        if value is None:
            if allow_development:
                return [DEVELOPMENT_FIELD_ENCRYPTION_KEY]
            raise _refusal("FIELD_ENCRYPTION_KEY", path, create_local)
        keys = [value]
        source = f"The key file {path}"
    for key in keys:
        try:
            raw = base64.urlsafe_b64decode(key.encode())
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise ImproperlyConfigured(
                f"{source} must hold Fernet keys (32 bytes, URL-safe base64, comma-separated); generate one "
                'with `python -c "import base64, secrets; print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())"`.'
            )
        if key == DEVELOPMENT_FIELD_ENCRYPTION_KEY and not allow_development:
            raise ImproperlyConfigured(
                f"{source} holds the public development encryption key; generate a private one."
            )
    return keys

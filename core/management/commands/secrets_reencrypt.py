"""Re-encrypt every stored secret with the first FIELD_ENCRYPTION_KEY (key rotation, or values stored in
clear before encryption existed). Safe to run twice."""

from __future__ import annotations

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import connection, transaction

from core import crypto
from core.fields import EncryptedTextField


class Command(BaseCommand):
    help = "Re-encrypt stored secrets with the first key of FIELD_ENCRYPTION_KEY."

    def handle(self, *args, **opts):
        total = 0
        for model in apps.get_models():
            columns = [f.column for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
            if not columns:
                continue
            table = connection.ops.quote_name(model._meta.db_table)
            pk = connection.ops.quote_name(model._meta.pk.column)
            quoted = [connection.ops.quote_name(c) for c in columns]
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SELECT {pk}, {', '.join(quoted)} FROM {table} FOR UPDATE")  # noqa: S608
                for row_id, *values in cursor.fetchall():
                    new = [crypto.reencrypt(v) if v else v for v in values]
                    cursor.execute(
                        f"UPDATE {table} SET {', '.join(f'{c} = %s' for c in quoted)} WHERE {pk} = %s",  # noqa: S608
                        [*new, row_id],
                    )
                    total += 1
        self.stdout.write(f"Re-encrypted {total} row(s).")

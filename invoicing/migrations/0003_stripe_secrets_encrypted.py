"""Stripe secret keys and webhook signing secrets encrypted at rest (core.crypto, FIELD_ENCRYPTION_KEY).

The columns become text (a Fernet token is longer than the secret), then every stored clear value is
encrypted in place. Reversing decrypts them back to clear text.
"""

from django.db import migrations

import core.fields

COLUMNS = ("secret_key", "webhook_secret")


def _rewrite(schema_editor, transform) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT id, secret_key, webhook_secret FROM invoicing_stripesettings FOR UPDATE")
        for row_id, *values in cursor.fetchall():
            new = [transform(v) if v else v for v in values]
            if new != values:
                cursor.execute(
                    "UPDATE invoicing_stripesettings SET secret_key = %s, webhook_secret = %s WHERE id = %s",
                    [*new, row_id],
                )


def encrypt_existing(apps, schema_editor) -> None:
    from core import crypto

    _rewrite(schema_editor, lambda v: v if crypto.is_encrypted(v) else crypto.encrypt(v))


def decrypt_existing(apps, schema_editor) -> None:
    from core import crypto

    _rewrite(schema_editor, crypto.decrypt)


class Migration(migrations.Migration):
    dependencies = [
        ("invoicing", "0002_taxrate_archived_at"),
    ]

    operations = [
        migrations.AlterField(
            model_name="stripesettings",
            name="secret_key",
            field=core.fields.EncryptedTextField(),
        ),
        migrations.AlterField(
            model_name="stripesettings",
            name="webhook_secret",
            field=core.fields.EncryptedTextField(blank=True, default=""),
        ),
        migrations.RunPython(encrypt_existing, decrypt_existing),
    ]

"""Idempotency records are sealed (encrypted answer, keyed fingerprint, principal scope) and
name the member they show. Records kept before held answers in the clear: they are deleted
(they live 48 h at most; a retry of such a request runs again and meets the effect's own
check, an order number or a payment ref), and on SQLite overwritten where they lay (secure
delete) and the WAL emptied, so no copy stays in the data directory's free pages.

Not atomic: the WAL can only be emptied outside a transaction."""

from typing import Any

from django.db import migrations, models


def forget_clear_records(apps: Any, schema_editor: Any) -> None:
    connection = schema_editor.connection
    sqlite = connection.vendor == "sqlite"
    with connection.cursor() as cursor:
        if sqlite:
            cursor.execute("PRAGMA secure_delete")
            previous = cursor.fetchone()[0]
            cursor.execute("PRAGMA secure_delete = ON")
        try:
            apps.get_model("core", "IdempotencyRecord").objects.all().delete()
        finally:
            if sqlite:
                cursor.execute(f"PRAGMA secure_delete = {int(previous)}")
        if sqlite:
            # the pages as overwritten go into the database file, and the WAL, which still
            # holds them as they were, starts again empty (best effort: a reader may hold it)
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ('core', '0002_heartbeat'),
    ]

    operations = [
        migrations.RunPython(forget_clear_records, migrations.RunPython.noop),
        migrations.AddField(
            model_name='idempotencyrecord',
            name='member_id',
            field=models.BigIntegerField(blank=True, db_index=True, null=True),
        ),
        migrations.AddField(
            model_name='idempotencyrecord',
            name='pii_unmasked',
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name='idempotencyrecord',
            name='withheld',
            field=models.CharField(blank=True, max_length=100),
        ),
    ]

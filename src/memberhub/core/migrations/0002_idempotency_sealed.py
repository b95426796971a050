"""Idempotency records are sealed (encrypted answer, keyed fingerprint, principal scope) and
name the member they show. Records kept before held answers in the clear: they are deleted
(they live 48 h at most, and a retry of an effect that was stored here finds the effect's own
reference, an order number or a payment ref, and answers it again)."""

from typing import Any

from django.db import migrations, models


def forget_clear_records(apps: Any, schema_editor: Any) -> None:
    apps.get_model("core", "IdempotencyRecord").objects.all().delete()


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0001_initial'),
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

"""Fewer indexes on the rows every purchase writes (an earn's commit writes one page per B-tree
it touches): the FK indexes another index leads with, the ones nothing searches by, and the
entry's hold index made partial (only redeem entries have a hold).

The indexes are dropped by name (`IF EXISTS`) rather than by AlterField, which on SQLite
copies the whole table once per field; the names are the ones 0001 created on both backends."""

import django.db.models.deletion
from django.db import migrations, models

# (table, index, column): the FK and db_index indexes 0001 created
DROPPED = [
    ("loyalty_pointsentry", "loyalty_pointsentry_account_id_4cbf56d0", "account_id"),
    ("loyalty_pointsentry", "loyalty_pointsentry_adjustment_id_94dc224d", "adjustment_id"),
    ("loyalty_pointsentry", "loyalty_pointsentry_hold_id_fe2d1992", "hold_id"),
    ("loyalty_pointsentry", "loyalty_pointsentry_lot_id_d7e2de04", "lot_id"),
    ("loyalty_pointsentry", "loyalty_pointsentry_purchase_id_295a19b1", "purchase_id"),
    ("loyalty_pointsentry", "loyalty_pointsentry_refund_id_e36274fe", "refund_id"),
    ("loyalty_purchase", "loyalty_purchase_external_ref_b4b15d1f", "external_ref"),
    ("loyalty_purchase", "loyalty_purchase_member_id_99156bce", "member_id"),
    ("loyalty_purchaseline", "loyalty_purchaseline_purchase_id_333ea30f", "purchase_id"),
]
LIKE = ("loyalty_purchase", "loyalty_purchase_external_ref_b4b15d1f_like", "external_ref")  # PostgreSQL only


def drop(apps, schema_editor):
    names = [name for _t, name, _c in DROPPED]
    if schema_editor.connection.vendor == "postgresql":
        names.append(LIKE[1])
    for name in names:
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


def restore(apps, schema_editor):
    q = schema_editor.quote_name
    for table, name, column in DROPPED:
        schema_editor.execute(f"CREATE INDEX {q(name)} ON {q(table)} ({q(column)})")
    if schema_editor.connection.vendor == "postgresql":
        table, name, column = LIKE
        schema_editor.execute(f"CREATE INDEX {q(name)} ON {q(table)} ({q(column)} varchar_pattern_ops)")


class Migration(migrations.Migration):

    dependencies = [
        ('loyalty', '0001_initial'),
        ('members', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='pointsentry',
                    name='account',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='entries', to='loyalty.pointsaccount'),
                ),
                migrations.AlterField(
                    model_name='pointsentry',
                    name='adjustment',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='loyalty.adjustment'),
                ),
                migrations.AlterField(
                    model_name='pointsentry',
                    name='hold',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='loyalty.hold'),
                ),
                migrations.AlterField(
                    model_name='pointsentry',
                    name='lot',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='entries', to='loyalty.pointslot'),
                ),
                migrations.AlterField(
                    model_name='pointsentry',
                    name='purchase',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='loyalty.purchase'),
                ),
                migrations.AlterField(
                    model_name='pointsentry',
                    name='refund',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='loyalty.refund'),
                ),
                migrations.AlterField(
                    model_name='purchase',
                    name='external_ref',
                    field=models.CharField(blank=True, max_length=80),
                ),
                migrations.AlterField(
                    model_name='purchase',
                    name='member',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='purchases', to='members.member'),
                ),
                migrations.AlterField(
                    model_name='purchaseline',
                    name='purchase',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='lines', to='loyalty.purchase'),
                ),
            ],
            database_operations=[migrations.RunPython(drop, restore)],
        ),
        migrations.AddIndex(
            model_name='pointsentry',
            index=models.Index(condition=models.Q(('hold__isnull', False)), fields=['hold'], name='points_entry_hold'),
        ),
    ]

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("core", "0004_idempotency_owner"),
    ]

    operations = [
        migrations.CreateModel(
            name="EventDelivery",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("event", models.CharField(max_length=80)),
                ("handler", models.CharField(max_length=200)),
                ("payload", models.JSONField(default=dict)),
                ("state", models.CharField(choices=[("pending", "Pending"), ("running", "Running"), ("done", "Done"),
                                                    ("dead", "Dead")], default="pending", max_length=16)),
                ("attempts", models.PositiveIntegerField(default=0)),
                ("due_at", models.DateTimeField()),
                ("claimed_by", models.CharField(blank=True, max_length=80)),
                ("claimed_at", models.DateTimeField(null=True)),
                ("created_at", models.DateTimeField()),
                ("done_at", models.DateTimeField(null=True)),
                ("last_error", models.TextField(blank=True)),
            ],
            options={
                "indexes": [models.Index(fields=["state", "due_at"], name="event_delivery_state_due")],
                "constraints": [models.CheckConstraint(
                    condition=models.Q(("state__in", ["pending", "running", "done", "dead"])),
                    name="event_delivery_state_valid")],
            },
        ),
    ]

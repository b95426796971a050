from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('wallet', '0003_movement_requested_fen'),
    ]

    operations = [
        migrations.AddField(
            model_name='giftcard',
            name='pin_failures',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='giftcard',
            name='pin_locked_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]

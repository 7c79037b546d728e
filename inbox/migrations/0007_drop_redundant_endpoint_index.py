import django.db.models.deletion
from django.db import migrations, models

# Only the index goes: Django's AlterField would also drop and re-add the foreign key,
# which checks every row with the table locked against the receiver. On PostgreSQL the
# index is dropped CONCURRENTLY, so ingest does not wait for it either.
INDEX = "inbox_message_endpoint_id_24cb4100"


def drop(apps, schema_editor):
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(f"DROP INDEX {concurrently}IF EXISTS {INDEX}")


def restore(apps, schema_editor):
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(f"CREATE INDEX {concurrently}IF NOT EXISTS {INDEX} ON inbox_message (endpoint_id)")


class Migration(migrations.Migration):
    atomic = False  # DROP INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("inbox", "0006_bulk_actions"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(drop, restore)],
            state_operations=[
                migrations.AlterField(
                    model_name="message",
                    name="endpoint",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.DB_CASCADE,
                        related_name="messages",
                        to="inbox.endpoint",
                    ),
                ),
            ],
        ),
    ]

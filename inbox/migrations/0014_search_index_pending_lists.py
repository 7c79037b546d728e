"""Search indexes off the receiver's hot INSERT (docs/architecture.md, "Search indexes").

PostgreSQL's three GIN indexes for search (migration 0005) stay whole, but each gets a
large pending list: the receiver's INSERT only appends its entries there (`fastupdate`, on
by default, made explicit), and the worker's `flush_search_indexes` task merges the lists
every 2 s. With the default limit (4 MB) the list fills within seconds under load and the
INSERT that overflows it merges it on the hot path. 32 MB holds about 10 s of this
machine's peak ingest of small JSON events (docs/performance.md), so the list only fills
if the worker stops; a search reads the pending list too, so it stays exact, and the
time it adds at a full list is measured in docs/performance.md.

A change of index options only: no table or index rewrite. `ALTER INDEX ... SET` takes a
short lock on each index (a catalogue update). SQLite has none of these indexes.
"""

from django.db import migrations

SEARCH_INDEXES = ("message_body_trgm", "message_headers_trgm", "message_json_path")
PENDING_LIST_KB = 32 * 1024


def _alter(clause):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for name in SEARCH_INDEXES:
            schema_editor.execute(f"ALTER INDEX IF EXISTS {name} {clause}")

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0013_bulkjob_upto_id"),
    ]

    operations = [
        migrations.RunPython(
            _alter(f"SET (fastupdate = on, gin_pending_list_limit = {PENDING_LIST_KB})"),
            _alter("RESET (fastupdate, gin_pending_list_limit)"),
            elidable=False,
        ),
    ]

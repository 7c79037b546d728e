"""Storing an accepted delivery: one INSERT that also deduplicates, shared by concurrent requests.

The receiver's budget is one database round trip per accepted message (docs/architecture.md,
"The ingest pipeline"): the INSERT carries its own conflict clause (no read-then-write), binds
its parameters on the server, and the threads of a web process share one INSERT and one
commit (group commit, inbox/ingest/groupcommit.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cache, lru_cache
from typing import Any

import psycopg
from django.db import DatabaseError, DataError, IntegrityError, ProgrammingError, connection, models

from inbox.ingest.groupcommit import GroupCommit
from inbox.models import Message

# A receiver connection unused for longer than this is checked before the INSERT.
IDLE_CHECK_SECONDS = 1.0


@cache
def _insert_fields() -> tuple[models.Field[Any, Any], ...]:
    return tuple(f for f in Message._meta.concrete_fields if not f.primary_key)


@lru_cache(maxsize=128)
def _insert_sql(vendor: str, rows: int) -> str:
    # Built once per batch size: the receiver runs it for every accepted message. On
    # PostgreSQL the placeholders are the server's own ($1, $2 …) for psycopg's RawCursor:
    # with %s, psycopg would parse the query again on every execution (it caches the
    # parse only for statements of at most 50 parameters, and a batch has 20 per row).
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(f.column)) for f in _insert_fields())
    width = len(_insert_fields())
    if vendor == "postgresql":
        tuples = (", ".join(f"${i * width + j + 1}" for j in range(width)) for i in range(rows))
    else:
        tuples = (", ".join(["%s"] * width) for _ in range(rows))
    values = ", ".join(f"({placeholders})" for placeholders in tuples)
    # Table and column names come from the model's own metadata, values are parameters.
    return (
        f"INSERT INTO {quote(Message._meta.db_table)} ({columns}) VALUES {values} "  # noqa: S608
        f"ON CONFLICT DO NOTHING RETURNING id, endpoint_id, idempotency_key"
    )


class Row:
    """One message row as the INSERT binds it: database-ready values by attribute name.

    The receiver builds these directly (no `Model.__init__`, no per-field preparation);
    a column it leaves out gets its field's default.
    """

    __slots__ = ("pk", "values")

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.pk: int | None = None

    @property
    def key(self) -> tuple[int, str | None]:
        return self.values["endpoint_id"], self.values.get("idempotency_key")


def row_of(message: Message) -> Row:
    """A model instance's row, each field prepared by Django (scripts, tests)."""
    return Row({f.attname: f.get_db_prep_save(f.pre_save(message, add=True), connection) for f in _insert_fields()})


@lru_cache(maxsize=8)
def _fillers(vendor: str) -> tuple[tuple[str, Callable[[], Any]], ...]:
    """Per column, in the INSERT's order: its attribute name and what fills it when a row
    leaves it out (its field's default, prepared once unless the default is a callable)."""

    def filler(field: models.Field[Any, Any]) -> Callable[[], Any]:
        if field.has_default() and callable(field.default):
            return lambda: field.get_db_prep_save(field.get_default(), connection)
        constant = field.get_db_prep_save(field.get_default(), connection)
        return lambda: constant

    return tuple((field.attname, filler(field)) for field in _insert_fields())


def _column_values(row: Row) -> list[Any]:
    values = row.values
    return [values[name] if name in values else fill() for name, fill in _fillers(connection.vendor)]


def insert_messages(messages: list[Message]) -> list[bool]:
    """insert_rows for model instances, which get their primary key when stored."""
    rows = [row_of(message) for message in messages]
    stored = insert_rows(rows)
    for message, row in zip(messages, rows, strict=True):
        if row.pk is not None:
            message.pk = row.pk
            message._state.adding = False
    return stored


def insert_rows(rows: list[Row]) -> list[bool]:
    """INSERT these rows in one statement (one round trip, one commit); for each, False
    when its idempotency key was already stored (or came earlier in the same list).

    The unique constraint decides, inside the database, so two concurrent deliveries of the
    same key cannot both be stored. RETURNING gives the inserted rows in the order of the
    VALUES list (Django's bulk_create relies on the same order on PostgreSQL and SQLite),
    minus the rows the conflict clause skipped; only rows with a key can be skipped, and
    every row carries its (endpoint, key), so walking both lists matches each row to its id.
    """
    # Rows go in key order: the INSERT waits on each conflicting key in turn, and two web
    # processes inserting the same keys in opposite orders would deadlock each other.
    ordered = sorted(rows, key=lambda r: (r.key[0], r.key[1] is None, r.key[1] or ""))
    values = [value for row in ordered for value in _column_values(row)]
    sql = _insert_sql(connection.vendor, len(ordered))
    if connection.vendor == "postgresql":
        # Server-side binding (Django's own cursors bind on the client): the parameters go
        # as they are instead of being quoted into the text in Python, and psycopg
        # prepares the statement once it has run a few times on this connection.
        # Django's own cursor() checks a persistent connection with a round trip at the
        # start of every request; that would double this path's budget. Check only a
        # connection that sat idle (the one a restart or an idle timeout can have dropped);
        # a busy one that breaks fails its batch with a 503 and is replaced after it.
        now = time.monotonic()
        if now - getattr(connection, "inbox_used_at", 0.0) > IDLE_CHECK_SECONDS:
            connection.close_if_health_check_failed()
        connection.ensure_connection()
        connection.inbox_used_at = now  # type: ignore[attr-defined]
        raw: Any = psycopg.RawCursor(connection.connection)  # django-stubs expect a wrapper here
        # Django's wrapper still turns driver errors into django.db errors and counts the query.
        wrap = connection.make_debug_cursor if connection.queries_logged else connection.make_cursor
        with wrap(raw) as cursor:
            cursor.execute(sql, values)
            returned = cursor.fetchall()
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, values)
            returned = cursor.fetchall()
    inserted: dict[int, bool] = {}
    position = 0
    for row in ordered:
        stored = position < len(returned) and tuple(returned[position][1:]) == row.key
        if stored:
            row.pk = returned[position][0]
            position += 1
        inserted[id(row)] = stored
    if position != len(returned):
        # Cannot happen while the order holds; refuse to answer rather than guess.
        raise DatabaseError("inserted rows could not be matched to their messages")
    return [inserted[id(row)] for row in rows]


# One per web process: the threads of a process share INSERTs and commits (inbox/ingest/groupcommit.py).
# A row the database refuses fails the statement as a whole, so nothing of it was kept and
# the batch can be written again row by row.
_group: GroupCommit[Row, bool] = GroupCommit(
    insert_rows,
    retry_one_by_one=(DataError, IntegrityError, ProgrammingError, TypeError, ValueError),
)


def store(row: Row) -> bool:
    """Store the row durably (its pk set); False when it was a duplicate delivery."""
    if connection.in_atomic_block:
        # Inside a caller's transaction (tests, scripts) only that transaction's commit
        # makes the row durable; other requests' rows must not ride on it.
        return insert_rows([row])[0]
    return _group.submit(row)

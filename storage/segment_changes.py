"""Triggers that note, in `segment_changes`, every customer whose filterable state changes: a tag
added or removed (`customer_tags`), a profile inserted, deleted or given another status, channel
or last-seen time (`customers`). The segment index (bot/customers/segment_index.py) reads and
deletes these notes before it counts, so its Redis bitmaps are never behind SQL.

Triggers rather than calls at each write site: the note is written in the writer's transaction
by whatever writes the row (tag rules, the WeCom sync, contact events, imports, a psql session),
so it commits or rolls back with the change itself.
"""
from __future__ import annotations

import sqlalchemy as sa

# Row-level, as on SQLite; the WHEN clauses keep the many updates that change nothing watched
# (the WeCom sync refreshes every tag's `added_at`, observe() every sender's `updated_at`) from
# calling the function at all. (Statement-level triggers with transition tables cost more here:
# the tag-rule benchmark ran 40 % slower with them, docs/BENCHMARKS.md.)
_WATCHED = ("status", "channel", "first_seen_at", "last_message_at")
_PG_FUNCTIONS = (
    """CREATE OR REPLACE FUNCTION segment_note_tag() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        INSERT INTO segment_changes (customer_id, tag) VALUES (OLD.customer_id, OLD.tag);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO segment_changes (customer_id, tag) VALUES (NEW.customer_id, NEW.tag);
    END IF;
    RETURN NULL;
END $$""",
    """CREATE OR REPLACE FUNCTION segment_note_customer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        INSERT INTO segment_changes (customer_id) VALUES (OLD.id);
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.id IS DISTINCT FROM OLD.id) THEN
        INSERT INTO segment_changes (customer_id) VALUES (NEW.id);
    END IF;
    RETURN NULL;
END $$""",
)

_PG_TRIGGERS = (
    ("segment_tags_insert", "INSERT", "customer_tags", "", "segment_note_tag"),
    ("segment_tags_delete", "DELETE", "customer_tags", "", "segment_note_tag"),
    ("segment_tags_update", "UPDATE OF customer_id, tag", "customer_tags",
     "WHEN (NEW.customer_id IS DISTINCT FROM OLD.customer_id OR NEW.tag IS DISTINCT FROM OLD.tag)", "segment_note_tag"),
    ("segment_customers_insert", "INSERT", "customers", "", "segment_note_customer"),
    ("segment_customers_delete", "DELETE", "customers", "", "segment_note_customer"),
    ("segment_customers_update", f"UPDATE OF id, {', '.join(_WATCHED)}", "customers",
     f"WHEN ({' OR '.join(f'NEW.{c} IS DISTINCT FROM OLD.{c}' for c in ('id', *_WATCHED))})", "segment_note_customer"),
)

# SQLite: the same triggers (`IF NOT EXISTS` makes creating them idempotent).
_SQLITE_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS segment_tags_insert AFTER INSERT ON customer_tags BEGIN "
    "INSERT INTO segment_changes (customer_id, tag) VALUES (NEW.customer_id, NEW.tag); END",
    "CREATE TRIGGER IF NOT EXISTS segment_tags_delete AFTER DELETE ON customer_tags BEGIN "
    "INSERT INTO segment_changes (customer_id, tag) VALUES (OLD.customer_id, OLD.tag); END",
    "CREATE TRIGGER IF NOT EXISTS segment_tags_update AFTER UPDATE OF customer_id, tag ON customer_tags "
    "WHEN NEW.customer_id IS NOT OLD.customer_id OR NEW.tag IS NOT OLD.tag BEGIN "
    "INSERT INTO segment_changes (customer_id, tag) VALUES (OLD.customer_id, OLD.tag); "
    "INSERT INTO segment_changes (customer_id, tag) VALUES (NEW.customer_id, NEW.tag); END",
    "CREATE TRIGGER IF NOT EXISTS segment_customers_insert AFTER INSERT ON customers BEGIN "
    "INSERT INTO segment_changes (customer_id) VALUES (NEW.id); END",
    "CREATE TRIGGER IF NOT EXISTS segment_customers_delete AFTER DELETE ON customers BEGIN "
    "INSERT INTO segment_changes (customer_id) VALUES (OLD.id); END",
    f"CREATE TRIGGER IF NOT EXISTS segment_customers_update AFTER UPDATE OF id, {', '.join(_WATCHED)} ON customers "
    f"WHEN {' OR '.join(f'NEW.{c} IS NOT OLD.{c}' for c in ('id', *_WATCHED))} BEGIN "
    "INSERT INTO segment_changes (customer_id) VALUES (OLD.id); "
    "INSERT INTO segment_changes (customer_id) SELECT NEW.id WHERE NEW.id IS NOT OLD.id; END",
)


def install_change_triggers(sync_conn) -> None:
    """Create (or replace) the triggers; idempotent, run with the schema on every start."""
    if sync_conn.dialect.name == "postgresql":
        # Several processes start at once: one at a time replaces the functions and triggers
        # (concurrent CREATE OR REPLACE of one function fails with "tuple concurrently updated").
        sync_conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('segment_changes'))"))
        for ddl in _PG_FUNCTIONS:
            sync_conn.execute(sa.text(ddl))
        # A queue: rows live seconds. Vacuumed after every 1,000 deleted, not 20 % of the table,
        # so refreshes, which read it by id from the oldest, do not step over dead entries.
        sync_conn.execute(sa.text("ALTER TABLE segment_changes SET (autovacuum_vacuum_scale_factor = 0, "
                                  "autovacuum_vacuum_threshold = 1000)"))
        # Only missing triggers are created: CREATE TRIGGER locks the table against writers.
        have = set(sync_conn.execute(sa.text(
            "SELECT tgname FROM pg_trigger WHERE tgrelid IN ('customers'::regclass, 'customer_tags'::regclass)")).scalars())
        for name, event, table, when, function in _PG_TRIGGERS:
            if name not in have:
                sync_conn.execute(sa.text(f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW {when} "
                                          f"EXECUTE FUNCTION {function}()"))
    else:
        for ddl in _SQLITE_TRIGGERS:
            sync_conn.execute(sa.text(ddl))

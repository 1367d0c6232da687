"""Async SQL layer (SQLAlchemy 2 Core): SQLite by default, PostgreSQL via DATABASE_URL.

Schema is created on start with `create_all` (idempotent: safe to run twice, and from
several processes at once, see `create_schema`), with the triggers that note segment changes
(storage/segment_changes.py).
"""
from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import AsyncIterator

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from storage.segment_changes import install_change_triggers

metadata = sa.MetaData()

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=True),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("userid", sa.String(64), nullable=True),  # the WeCom userid of a staff token
)

channels = sa.Table(
    "channels",
    metadata,
    sa.Column("state", sa.String(30), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("welcome_text", sa.Text, nullable=False, server_default=""),
    sa.Column("tag_ids", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("parent", sa.String(30), nullable=True),       # layered codes: city → store → staff
    sa.Column("config_id", sa.String(64), nullable=True),    # its WeCom contact way, when created here
    sa.Column("qr_code", sa.Text, nullable=True),
)

welcome_log = sa.Table(
    "welcome_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("external_user_id", sa.String(64), nullable=False),
    sa.Column("state", sa.String(30), nullable=False, server_default=""),
    sa.Column("welcome_sent", sa.Boolean, nullable=False),
    sa.Column("tags_marked", sa.Boolean, nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)


def aware_iso(dt: datetime | None) -> str | None:
    """ISO-8601 with an offset: SQLite hands back naive datetimes for timezone-aware columns
    (they hold UTC), PostgreSQL aware ones; both answer `…+00:00`."""
    if dt is None:
        return None
    return (dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)).isoformat()


def dialect_insert(engine: AsyncEngine, table: sa.Table):
    """INSERT with ON CONFLICT support for the engine's dialect (SQLite or PostgreSQL)."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def insert_ignore(engine: AsyncEngine, table: sa.Table):
    return dialect_insert(engine, table).on_conflict_do_nothing()


# SQLite has one write lock per database file. The relay event log is written before every
# sign-up is answered, so it lives in a file of its own (`<name>.relay_log.db`, attached to every
# connection as `relay_log`): an archive import holding the main file's write lock for a
# 1,000-record transaction no longer stalls the flash sale behind it (issue 11, finding 7; the
# benchmark saw 2,236 sign-ups/s fall to 16/s). Reads and joins see the table unqualified, since
# the main file has no `relay_events` of its own. PostgreSQL locks rows, not the database: there
# the table stays in the one database.
RELAY_LOG = "relay_log"


def relay_log_path(url: str) -> Path | None:
    """The relay event log's own SQLite file for a file-backed SQLite `url`, else None."""
    if not url.startswith("sqlite") or ":///" not in url:
        return None
    db = Path(url.split(":///", 1)[1].split("?", 1)[0])
    if not db.name or db.name == ":memory:":
        return None
    return db.with_name(f"{db.stem}.{RELAY_LOG}.db")


def make_engine(url: str, *, relay_log_only: bool = False) -> AsyncEngine:
    """`relay_log_only`: an engine on the relay log's SQLite file itself (its own connections and
    write path; see RELAY_LOG), for the event writer."""
    if url.startswith("sqlite"):
        from sqlalchemy import event

        log_path = relay_log_path(url)
        if relay_log_only:
            assert log_path is not None, "the relay log has its own file only with file-backed SQLite"
            url, log_path = f"sqlite+aiosqlite:///{log_path}", None
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # WAL lets the web process and workers share the file
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=30000")
            if log_path is not None:
                cur.execute(f"ATTACH DATABASE ? AS {RELAY_LOG}", (str(log_path),))
            for schema in ("main", RELAY_LOG) if log_path is not None else ("main",):
                cur.execute(f"PRAGMA {schema}.journal_mode=WAL")
                cur.execute(f"PRAGMA {schema}.synchronous=NORMAL")
            cur.close()

        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


async def create_schema(engine: AsyncEngine) -> None:
    separate_log = relay_log_path(str(engine.url)) is not None
    for attempt in range(2):
        try:
            async with engine.begin() as conn:
                if separate_log:
                    await conn.run_sync(_create_with_relay_log)
                else:
                    await conn.run_sync(metadata.create_all)
                    await conn.run_sync(add_missing_columns)
                await conn.run_sync(install_change_triggers)
            break
        except (IntegrityError, ProgrammingError):
            # Two processes racing on PostgreSQL's catalog: the other one created it; check again.
            if attempt:
                raise
    if separate_log:
        await _move_events_to_relay_log(engine)


def _create_with_relay_log(sync_conn) -> None:
    main = [t for t in metadata.sorted_tables if t is not relay_events]
    metadata.create_all(sync_conn, tables=main)
    add_missing_columns(sync_conn, main)
    in_log = sync_conn.execution_options(schema_translate_map={None: RELAY_LOG})
    relay_events.create(in_log, checkfirst=True)
    add_missing_columns(sync_conn, [relay_events], schema=RELAY_LOG)


async def _move_events_to_relay_log(engine: AsyncEngine) -> None:
    """A store from before the split has `relay_events` in the main file: copy its rows into the
    relay log, then drop it (two transactions: WAL commits across attached files are not atomic,
    and a crash between them only repeats the copy, which ignores rows already there)."""
    async with engine.begin() as conn:
        old = (await conn.execute(sa.text("SELECT 1 FROM main.sqlite_master WHERE type = 'table' "
                                          "AND name = 'relay_events'"))).first()
        if old is None:
            return
        await conn.execute(sa.text(f"INSERT OR IGNORE INTO {RELAY_LOG}.relay_events SELECT * FROM main.relay_events"))
    async with engine.begin() as conn:
        await conn.execute(sa.text("DROP TABLE IF EXISTS main.relay_events"))


def add_missing_columns(sync_conn, tables: list[sa.Table] | None = None, schema: str | None = None) -> None:
    """Columns added to a table after a store was created (nullable ones only): `create_all`
    never alters an existing table, so a store from an older version gains them here."""
    inspector = sa.inspect(sync_conn)
    existing_tables = set(inspector.get_table_names(schema=schema))
    prefix = f"{schema}." if schema else ""
    for table in tables if tables is not None else metadata.sorted_tables:
        if table.name not in existing_tables:
            continue
        have = {c["name"] for c in inspector.get_columns(table.name, schema=schema)}
        for col in table.columns:
            if col.name not in have and col.nullable:
                ddl = sa.schema.CreateColumn(col).compile(dialect=sync_conn.dialect)
                sync_conn.execute(sa.text(f"ALTER TABLE {prefix}{table.name} ADD COLUMN {ddl}"))
        # Indexes added later, too (CREATE INDEX IF NOT EXISTS on both dialects).
        indexes = {i["name"] for i in inspector.get_indexes(table.name, schema=schema)}
        for index in table.indexes:
            if index.name not in indexes and schema is None:
                index.create(sync_conn, checkfirst=True)


@asynccontextmanager
async def open_database(url: str) -> AsyncIterator[AsyncEngine]:
    if url.startswith("sqlite+aiosqlite:///"):
        Path(url.split(":///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        await create_schema(engine)
        yield engine
    finally:
        await engine.dispose()


@asynccontextmanager
async def open_relay_log(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The engine relay events are written through: on file-backed SQLite one of its own on the
    relay log's file (see RELAY_LOG; `open_database` created the table), else `engine` itself."""
    if relay_log_path(str(engine.url)) is None:
        yield engine
        return
    log_engine = make_engine(engine.url.render_as_string(hide_password=False), relay_log_only=True)
    try:
        yield log_engine
    finally:
        await log_engine.dispose()

relays = sa.Table(
    "relays",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("chat_id", sa.String(128), nullable=False, index=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("stock", sa.Integer, nullable=False),
    sa.Column("per_user_limit", sa.Integer, nullable=False),
    sa.Column("waitlist", sa.Boolean, nullable=False),
    sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("chat_kind", sa.String(16), nullable=False, server_default="customer"),
    sa.Column("owner_userid", sa.String(64), nullable=True),
    sa.Column("created_by", sa.String(200), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
)

# The durable record of a relay: every state change, in order. Redis state is rebuilt from it.
relay_events = sa.Table(
    "relay_events",
    metadata,
    sa.Column("relay_id", sa.String(32), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("sender_id", sa.String(128), nullable=False, server_default=""),
    sa.Column("sender_name", sa.String(200), nullable=False, server_default=""),
    sa.Column("msgid", sa.String(128), nullable=True),
    sa.Column("changes", sa.JSON, nullable=False),
    sa.Column("response", sa.JSON, nullable=True),
    sa.Column("line", sa.Text, nullable=False, server_default=""),
    sa.Column("at", sa.Float, nullable=False),
)

# --- knowledge base ------------------------------------------------------------------------
scripts = sa.Table(
    "scripts",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("vector_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False, unique=True),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("reply", sa.Text, nullable=False),
    sa.Column("scenario", sa.String(200), nullable=False, server_default=""),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("source", sa.String(200), nullable=False, server_default=""),
    sa.Column("status", sa.String(16), nullable=False, server_default="approved"),
    sa.Column("stats", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("alternatives", sa.JSON, nullable=True),  # other ways customers ask (added later: nullable)
)

# The embeddings of one script's views (question, question+scenario+reply, reply, alternatives…),
# stacked, per script and model, so an index can be rebuilt without re-encoding.
script_vectors = sa.Table(
    "script_vectors",
    metadata,
    sa.Column("script_id", sa.String(128), primary_key=True),
    sa.Column("model", sa.String(300), primary_key=True),
    sa.Column("vector", sa.LargeBinary, nullable=False),
)

# --- conversations, messages, analyses, flags ----------------------------------------------
conversations = sa.Table(
    "conversations",
    metadata,
    sa.Column("id", sa.String(300), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("roomid", sa.String(128), nullable=True),
    sa.Column("staff_id", sa.String(128), nullable=True, index=True),
    sa.Column("customer_id", sa.String(128), nullable=True, index=True),
    sa.Column("participants", sa.JSON, nullable=False),
    sa.Column("last_message_at", sa.BigInteger, nullable=False, server_default="0", index=True),
    sa.Column("message_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("flag_count", sa.Integer, nullable=False, server_default="0"),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("msgid", sa.String(128), primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=True, index=True),
    sa.Column("conversation_id", sa.String(300), nullable=False),
    sa.Column("sender_id", sa.String(128), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("msgtime", sa.BigInteger, nullable=False),
    sa.Column("msgtype", sa.String(32), nullable=False),
    sa.Column("text", sa.Text, nullable=True),
    sa.Column("raw", sa.JSON, nullable=False),
    sa.Column("recalled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("recalls_msgid", sa.String(128), nullable=True, index=True),
    sa.Column("analyzed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("source", sa.String(16), nullable=False, server_default="archive"),
    sa.Index("ix_messages_conv_time", "conversation_id", "msgtime"),
    sa.Index("ix_messages_pending", "analyzed", "msgtime"),
    sa.Index("ix_messages_sender_time", "sender_id", "msgtime"),  # customer profiles' day counts
)

# Who takes part in a conversation (staff and customers), for ownership checks: a staff member
# sees the conversations they are a member of (docs/CONSOLE.md, "Who sees what").
conversation_members = sa.Table(
    "conversation_members",
    metadata,
    sa.Column("conversation_id", sa.String(300), primary_key=True),
    sa.Column("member_id", sa.String(128), primary_key=True),
    sa.Index("ix_conversation_members_member", "member_id"),
)

analyses = sa.Table(
    "analyses",
    metadata,
    sa.Column("msgid", sa.String(128), primary_key=True),
    sa.Column("intent", sa.String(32), nullable=False),
    sa.Column("intent_score", sa.Float, nullable=False),
    sa.Column("sentiment", sa.String(16), nullable=False),
    sa.Column("sentiment_score", sa.Float, nullable=False),
    sa.Column("sensitive", sa.JSON, nullable=False),
    sa.Column("flagged", sa.Boolean, nullable=False),
    sa.Column("analyzed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("models", sa.JSON, nullable=True),  # {task: model version} that produced it
)

# What a customer's negative message is about (nlp/topics.py), assigned by the schedule in batches.
message_topics = sa.Table(
    "message_topics",
    metadata,
    sa.Column("msgid", sa.String(128), primary_key=True),
    sa.Column("topic", sa.String(32), nullable=True),                # None: no named topic (其他)
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("msgtime", sa.BigInteger, nullable=False),
    sa.Index("ix_message_topics_time", "msgtime"),
)

# Staff picking (or ignoring) a suggestion for a customer's words: a query→script pair. Picked
# queries are proposed to a trainer as alternative questions of the script (knowledge/picks.py).
script_picks = sa.Table(
    "script_picks",
    metadata,
    sa.Column("id", sa.String(24), primary_key=True),            # sha256(script_id, query)[:24]
    sa.Column("script_id", sa.String(128), nullable=False, index=True),
    sa.Column("query", sa.Text, nullable=False),
    sa.Column("picked", sa.Integer, nullable=False, server_default="0"),
    sa.Column("ignored", sa.Integer, nullable=False, server_default="0"),
    sa.Column("status", sa.String(16), nullable=False, server_default="proposed"),  # proposed | accepted | rejected
    sa.Column("last_by", sa.String(200), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# --- customer operations (docs/CUSTOMERS.md) -------------------------------------------------
customers = sa.Table(
    "customers",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),             # external_userid
    sa.Column("name", sa.String(200), nullable=True),               # from WeCom, when known
    sa.Column("status", sa.String(24), nullable=False, server_default="active"),  # active | lost
    sa.Column("channel", sa.String(64), nullable=True),             # the contact way's state when added
    sa.Column("first_seen_at", sa.BigInteger, nullable=False),      # ms
    sa.Column("last_message_at", sa.BigInteger, nullable=True),     # ms, the customer's own last message
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_customers_last_message", "last_message_at"),
)

# Which staff members follow a customer (add_external_contact, or a private conversation).
customer_staff = sa.Table(
    "customer_staff",
    metadata,
    sa.Column("customer_id", sa.String(128), primary_key=True),
    sa.Column("staff_id", sa.String(128), primary_key=True),
    sa.Column("added_at", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(64), nullable=True),
    sa.Column("deleted_at", sa.BigInteger, nullable=True),          # the customer deleted the staff member
    sa.Index("ix_customer_staff_staff", "staff_id"),
)

# What a customer said per day: intents and sentiments counted, for windows of days.
customer_daily = sa.Table(
    "customer_daily",
    metadata,
    sa.Column("customer_id", sa.String(128), primary_key=True),
    sa.Column("day", sa.Integer, primary_key=True),                  # days since 1970-01-01 (UTC+8)
    sa.Column("kind", sa.String(12), primary_key=True),             # intent | sentiment
    sa.Column("label", sa.String(32), primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Index("ix_customer_daily_label", "kind", "label", "day"),
)

customer_tags = sa.Table(
    "customer_tags",
    metadata,
    sa.Column("customer_id", sa.String(128), primary_key=True),
    sa.Column("tag", sa.String(64), primary_key=True),
    sa.Column("source", sa.String(64), nullable=False),              # rule:<id> | api | wecom | channel
    sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_customer_tags_tag", "tag", "customer_id"),
)

# The segment index (bot/customers/segment_index.py): a dense number per customer for its Redis
# bitmaps, and the customers whose filterable state changed since the index last read them.
# Triggers (storage/segment_changes.py) write `segment_changes` in the writer's own transaction, so
# no write path can change a profile or tag without the index hearing of it.
customer_numbers = sa.Table(
    "customer_numbers",
    metadata,
    sa.Column("num", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("customer_id", sa.String(128), nullable=False, unique=True),
)

segment_changes = sa.Table(
    "segment_changes",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("customer_id", sa.String(128), nullable=False),
    sa.Column("tag", sa.String(64), nullable=True),                  # None: a profile column changed
)

# Which SQL store the Redis index was built from (a token, one row): a reset database, or another
# store sharing the Redis db, makes the index rebuild instead of trusting bits for other rows.
segment_index_state = sa.Table(
    "segment_index_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("token", sa.String(32), nullable=False),
)

tag_rules = sa.Table(
    "tag_rules",
    metadata,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("tag", sa.String(64), nullable=False),
    sa.Column("when", sa.JSON, nullable=False),
    sa.Column("remove_when_false", sa.Boolean, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# Tags to add to / remove from a customer in WeCom (externalcontact/mark_tag), done once each.
tag_pushes = sa.Table(
    "tag_pushes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("customer_id", sa.String(128), nullable=False),
    sa.Column("tag", sa.String(64), nullable=False),
    sa.Column("op", sa.String(8), nullable=False),                   # add | remove
    sa.Column("status", sa.String(12), nullable=False),              # pending | done | failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_tag_pushes_status", "status", "id"),
)

# Our tags' ids in WeCom's corp tag library (created in one group on first use).
wecom_corp_tags = sa.Table(
    "wecom_corp_tags",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("tag_id", sa.String(64), nullable=False),
)

segments = sa.Table(
    "segments",
    metadata,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("filter", sa.JSON, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# Campaigns (群发 to a segment): one WeCom message template per following staff member.
campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("segment_id", sa.String(24), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),            # scheduled | sending | sent | failed
    sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("unreachable", sa.Integer, nullable=False, server_default="0"),  # in the segment, nobody follows
)

campaign_tasks = sa.Table(
    "campaign_tasks",
    metadata,
    sa.Column("campaign_id", sa.String(24), primary_key=True),
    sa.Column("staff_id", sa.String(128), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),            # pending | creating | created | uncertain | failed
    sa.Column("msgid", sa.String(128), nullable=True),             # WeCom's template msgid
    sa.Column("staff_sent_at", sa.BigInteger, nullable=True),       # ms, the staff member confirmed
    sa.Column("error", sa.Text, nullable=True),
)

campaign_targets = sa.Table(
    "campaign_targets",
    metadata,
    sa.Column("campaign_id", sa.String(24), primary_key=True),
    sa.Column("customer_id", sa.String(128), primary_key=True),
    sa.Column("staff_id", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),            # targeted | failed | delivered | not_friend | limited
    sa.Column("delivered_at", sa.BigInteger, nullable=True),         # ms
)

# Orders imported from the brand's shop system, for conversions and ROI per touchpoint.
orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("customer_id", sa.String(128), nullable=False),
    sa.Column("amount_cents", sa.BigInteger, nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),                  # ms
    sa.Column("campaign_id", sa.String(24), nullable=True),
    sa.Column("channel", sa.String(64), nullable=True),
    sa.Column("staff_id", sa.String(128), nullable=True),
    sa.Index("ix_orders_customer_at", "customer_id", "at"),
)

# Stores, for nearest-store routing (docs/CUSTOMERS.md).
stores = sa.Table(
    "stores",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("lng", sa.Float, nullable=False),
    sa.Column("hours", sa.String(64), nullable=True),                # "10:00-22:00"
    sa.Column("staff", sa.JSON, nullable=False),                     # WeCom userids
    sa.Column("group_chat_id", sa.String(128), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# Fission (裂变): participants invite friends through their own contact way (state f:<campaign>:<n>).
fission_campaigns = sa.Table(
    "fission_campaigns",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("starts_at", sa.BigInteger, nullable=False),          # ms
    sa.Column("ends_at", sa.BigInteger, nullable=False),
    sa.Column("retain_hours", sa.Integer, nullable=False),
    sa.Column("reward_tiers", sa.JSON, nullable=False),             # [{"invites": n, "reward": str}]
    sa.Column("staff", sa.JSON, nullable=False),                    # members the participants' codes add
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

fission_participants = sa.Table(
    "fission_participants",
    metadata,
    sa.Column("campaign_id", sa.String(16), primary_key=True),
    sa.Column("participant_id", sa.String(128), primary_key=True),
    sa.Column("state", sa.String(30), nullable=False, unique=True),
    sa.Column("config_id", sa.String(64), nullable=True),
    sa.Column("qr_code", sa.Text, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

fission_invites = sa.Table(
    "fission_invites",
    metadata,
    sa.Column("campaign_id", sa.String(16), primary_key=True),
    sa.Column("invitee_id", sa.String(128), primary_key=True),      # one invite per new contact and campaign
    sa.Column("state", sa.String(30), nullable=False, index=True),
    sa.Column("staff_id", sa.String(128), nullable=False),
    sa.Column("added_at", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(12), nullable=False),             # pending | counted | rejected
    sa.Column("reason", sa.String(64), nullable=True),
)

fission_claims = sa.Table(
    "fission_claims",
    metadata,
    sa.Column("campaign_id", sa.String(16), primary_key=True),
    sa.Column("participant_id", sa.String(128), primary_key=True),
    sa.Column("tier", sa.Integer, primary_key=True),                # the tier's invites threshold
    sa.Column("fulfilled_by", sa.String(200), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

# Work orders: a complaint someone owns and closes, with an SLA and an audit trail (docs/EXPERIENCE.md).
work_orders = sa.Table(
    "work_orders",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("customer_id", sa.String(128), nullable=False),
    sa.Column("cause", sa.String(32), nullable=False),              # complaint | negative_sentiment | manual
    sa.Column("status", sa.String(16), nullable=False),             # open | in_progress | resolved | closed
    sa.Column("severity", sa.String(8), nullable=False),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("staff_id", sa.String(128), nullable=True),           # the staff member of the conversation
    sa.Column("conversation_id", sa.String(300), nullable=True),
    sa.Column("evidence", sa.JSON, nullable=False),                 # [msgid]
    sa.Column("due_at", sa.BigInteger, nullable=False),             # ms
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Column("resolved_at", sa.BigInteger, nullable=True),
    sa.Column("alerted_at", sa.BigInteger, nullable=True),          # the owner was told
    sa.Column("escalated_to", sa.String(128), nullable=True),
    sa.Column("escalated_at", sa.BigInteger, nullable=True),
    sa.Column("active_key", sa.String(200), nullable=True, unique=True),  # customer|cause while not closed
    sa.Index("ix_work_orders_status_due", "status", "due_at"),
    sa.Index("ix_work_orders_customer", "customer_id"),
)

work_order_events = sa.Table(
    "work_order_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("order_id", sa.String(16), nullable=False, index=True),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("by", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),               # opened | evidence | transition | alert | escalation
    sa.Column("detail", sa.JSON, nullable=False),
)

# Where a customer is, from a location message or a store's channel code, and the nearest open
# store; once routed, to whom (docs/GROWTH.md, "Routing to the nearest store").
customer_locations = sa.Table(
    "customer_locations",
    metadata,
    sa.Column("customer_id", sa.String(128), primary_key=True),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("lng", sa.Float, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),              # location | channel
    sa.Column("at", sa.BigInteger, nullable=False),                  # ms
    sa.Column("store_id", sa.String(64), nullable=True),             # the nearest open store then
    sa.Column("routed_to", sa.String(128), nullable=True),           # the staff member it was handed to
    sa.Column("routed_at", sa.BigInteger, nullable=True),
)

# A satisfaction survey per resolved work order: a link for the customer, answered once (docs/EXPERIENCE.md).
work_order_surveys = sa.Table(
    "work_order_surveys",
    metadata,
    sa.Column("token", sa.String(40), primary_key=True),            # unguessable; the link's only key
    sa.Column("order_id", sa.String(16), nullable=False, unique=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("rating", sa.Integer, nullable=True),                 # 1..5
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("answered_at", sa.BigInteger, nullable=True),
)

# Customer groups (客户群), kept from change_external_chat and groupchat/get (docs/GROUPS.md).
groups = sa.Table(
    "groups",
    metadata,
    sa.Column("chat_id", sa.String(128), primary_key=True),
    sa.Column("name", sa.String(200), nullable=True),
    sa.Column("owner", sa.String(128), nullable=True),
    sa.Column("type", sa.String(32), nullable=True),                 # chosen by operators: store, member, flash_sale…
    sa.Column("status", sa.String(12), nullable=False),              # active | dismissed
    sa.Column("member_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("joins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("leaves", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

sop_plans = sa.Table(
    "sop_plans",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("group_type", sa.String(32), nullable=False),
    sa.Column("target_mix", sa.JSON, nullable=False),               # {"practical": 3, "interaction": 3, ...}
    sa.Column("posts", sa.JSON, nullable=False),                    # [{"weekday", "time", "kind", "text"}]
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# One planned post in one group at one time: pending → sent | missed.
sop_runs = sa.Table(
    "sop_runs",
    metadata,
    sa.Column("plan_id", sa.String(16), primary_key=True),
    sa.Column("post", sa.Integer, primary_key=True),                # index in the plan's posts
    sa.Column("chat_id", sa.String(128), primary_key=True),
    sa.Column("due_at", sa.BigInteger, primary_key=True),           # ms
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("status", sa.String(12), nullable=False),             # pending | sent | missed | failed
    sa.Column("msgid", sa.String(128), nullable=True),              # the 群发 task
    sa.Column("error", sa.Text, nullable=True),
)

# The material library (docs/GROUPS.md, "Materials"): texts, images, links, mini-program cards, files.
materials = sa.Table(
    "materials",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),                # text | image | link | miniprogram | file
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("content", sa.Text, nullable=False, server_default=""),  # the text, or the link / page path
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("file_name", sa.String(200), nullable=True),
    sa.Column("content_type", sa.String(100), nullable=True),
    sa.Column("media_id", sa.String(200), nullable=True),            # WeCom temporary media, valid 3 days
    sa.Column("media_at", sa.BigInteger, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

material_uses = sa.Table(
    "material_uses",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("material_id", sa.String(16), nullable=False, index=True),
    sa.Column("channel", sa.String(16), nullable=False),             # sidebar | sop | campaign
    sa.Column("by", sa.String(200), nullable=False),
    sa.Column("conversation_id", sa.String(300), nullable=True),
    sa.Column("at", sa.BigInteger, nullable=False),
)

# --- learning loop -------------------------------------------------------------------------
# One label per task and text (the latest wins): trainers' labels and corrections from work people
# already do, with who, when, where from and the model that was wrong.
labels = sa.Table(
    "labels",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),          # sha256(task, text)
    sa.Column("task", sa.String(16), nullable=False, index=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("label", sa.String(64), nullable=False),
    sa.Column("msgid", sa.String(128), nullable=True),
    sa.Column("source", sa.String(32), nullable=False),          # api | import | flag_review | …
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("model_guess", sa.String(64), nullable=True),      # what the model said, when known
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# The model registry: every trained model is a version (docs/EVALUATION.md, "The learning loop").
# Artefacts live in DATA_DIR/model_versions/<version>.joblib; a `base` version is the model built
# from the repository's own data (its artefact is COPILOT_MODELS_DIR/<task>.joblib).
model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("version", sa.String(80), primary_key=True),
    sa.Column("task", sa.String(16), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),          # candidate | active | retired
    sa.Column("kind", sa.String(8), nullable=False),             # base | trained
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("promoted_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("promoted_by", sa.String(200), nullable=True),
    sa.Column("code_version", sa.String(64), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),                  # counts by source, content hash
    sa.Column("metrics", sa.JSON, nullable=False),               # gate (+ the baseline it was compared with)
    sa.Column("job_id", sa.String(32), nullable=True),
    # One active version per task, whatever two promotions race.
    sa.Index("uq_model_versions_active", "task", unique=True,
             sqlite_where=sa.text("status = 'active'"), postgresql_where=sa.text("status = 'active'")),
)

training_jobs = sa.Table(
    "training_jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("task", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),          # queued | running | done | failed
    sa.Column("version", sa.String(80), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("requested_by", sa.String(200), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_training_jobs_status", "status", "created_at"),
)

flags = sa.Table(
    "flags",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("conversation_id", sa.String(300), nullable=False, index=True),
    sa.Column("msgid", sa.String(128), nullable=True),
    sa.Column("staff_id", sa.String(128), nullable=True, index=True),
    sa.Column("reason", sa.String(40), nullable=False),
    sa.Column("severity", sa.String(8), nullable=False),
    sa.Column("severity_rank", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="open"),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reviewed_by", sa.String(200), nullable=True),
    sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("note", sa.Text, nullable=True),
    sa.UniqueConstraint("msgid", "reason", name="uq_flags_msg_reason"),
    sa.Index("ix_flags_queue", "status", "severity_rank", "created_at"),
)

flag_reviews = sa.Table(
    "flag_reviews",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("flag_id", sa.String(32), nullable=False, index=True),
    sa.Column("verdict", sa.String(16), nullable=False),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
    sa.Column("reviewer", sa.String(200), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

# Archive records that could not be decrypted yet (e.g. unknown publickey_ver): kept, retried.
archive_parked = sa.Table(
    "archive_parked",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("msgid", sa.String(128), nullable=False),
    sa.Column("publickey_ver", sa.Integer, nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

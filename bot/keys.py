"""Every Redis key the service uses, built in one place (as arq's constants module).

One key lives elsewhere: the knowledge base's change stream `copilot:kb:changes`
(`knowledge.base.CHANGES_KEY`, kept beside the code that replays it)."""
from __future__ import annotations

PREFIX = "copilot:"

# --- gateway ---------------------------------------------------------------------------------
EVENTS_STREAM = f"{PREFIX}events"  # Settings.stream_name (benchmarks use their own)
CONSUMER_GROUP = "workers"


def dedupe(key: str) -> str:
    return f"{PREFIX}dedupe:{key}"


def dead_letter(stream: str) -> str:
    return f"{stream}:dead"


# --- WeCom, per corp and agent: `access_token`, `access_token_lock`, `agent_ticket` (JS-SDK) -----
def wecom(kind: str, corp_id: str, agent: str) -> str:
    return f"{PREFIX}wecom:{kind}:{corp_id}:{agent}"


# --- relays, login limits, console sessions --------------------------------------------------
def relay(relay_id: str, field: str) -> str:
    # The hash tag keeps one relay's keys in one Redis Cluster slot, as its Lua scripts need.
    return f"{PREFIX}relay:{{{relay_id}}}:{field}"


def auth_failures(scope: str, window: int) -> str:
    """Failed token attempts in one fixed window; scope is `all` or `ip:<address>`."""
    return f"{PREFIX}authfail:{scope}:{window}"


def session(sid: str) -> str:
    return f"{PREFIX}session:{sid}"


# --- conversations -------------------------------------------------------------------------
def conversation_suggestions(conversation_id: str) -> str:
    """The latest reply suggestions for a conversation (written by the pipeline, read by the API)."""
    return f"{PREFIX}conv:{conversation_id}:suggestions"


def flag_window(conversation_id: str, reason: str) -> str:
    """Held by the first message flagged for `reason` in a conversation within the flag window."""
    return f"{PREFIX}flagwin:{conversation_id}:{reason}"


ARCHIVE_PULL_LOCK = f"{PREFIX}archive:pull_lock"  # one archive puller at a time


def kf(kind: str, ident: str) -> str:
    """客服: `cursor` per open_kfid (sync_msg position), `seen` per msgid (handled once)."""
    return f"{PREFIX}kf:{kind}:{ident}"


# --- segments: the bitmap index over customers (bot/customers/segment_index.py) --------------
SEGMENT_INDEX_LOCK = f"{PREFIX}segments:lock"  # one process writes the index at a time


def segment_index(part: str) -> str:
    """`built` (the SQL store's token), `status`, `seen`, `channel` (arrays by customer number),
    `channels` (channel → its number), `tags` (the tags that have a bitmap)."""
    return f"{PREFIX}segments:{part}"


def segment_tag_bits(tag: str) -> str:
    return f"{PREFIX}segments:tag:{tag}"


# --- jobs ----------------------------------------------------------------------------------
MINING_DAILY = f"{PREFIX}mining:daily"  # one process mines draft scripts per day
TAG_RULES_LOCK = f"{PREFIX}customers:tag_rules"  # one process evaluates every rule over everyone
TAG_PUSH_LOCK = f"{PREFIX}customers:tag_push"  # one process sends the mark_tag outbox
CAMPAIGN_LOCK = f"{PREFIX}customers:campaigns"  # one process creates campaigns' WeCom tasks
SOP_LOCK = f"{PREFIX}groups:sop"  # one process carries out and tracks group SOP posts
NEGATIVE_TOPICS_LOCK = f"{PREFIX}analytics:negative_topics"  # one process assigns topics at a time
CUSTOMER_SYNC_LOCK = f"{PREFIX}customers:sync"  # one WeCom customer sync at a time
CUSTOMER_SYNC_LAST = f"{PREFIX}customers:sync:last"  # the last sync's report (JSON)
CUSTOMER_SYNC_DAILY = f"{PREFIX}customers:sync:daily"  # the scheduled sync runs once a day


def training_nightly(day: str) -> str:
    """Set by the one process that queues a day's nightly training jobs."""
    return f"{PREFIX}training:nightly:{day}"

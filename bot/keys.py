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


def access_token(corp_id: str, agent: str) -> str:
    return f"{PREFIX}wecom:access_token:{corp_id}:{agent}"


def access_token_lock(corp_id: str, agent: str) -> str:
    return f"{PREFIX}wecom:access_token_lock:{corp_id}:{agent}"


def dead_letter(stream: str) -> str:
    return f"{stream}:dead"



def relay(relay_id: str, field: str) -> str:
    # The hash tag keeps one relay's keys in one Redis Cluster slot, as its Lua scripts need.
    return f"{PREFIX}relay:{{{relay_id}}}:{field}"


def auth_failures(scope: str, window: int) -> str:
    """Failed token attempts in one fixed window; scope is `all` or `ip:<address>`."""
    return f"{PREFIX}authfail:{scope}:{window}"



# --- console and WeCom JS-SDK ----------------------------------------------------------------
def session(sid: str) -> str:
    return f"{PREFIX}session:{sid}"


def agent_ticket(corp_id: str, agent: str) -> str:
    """The JS-SDK agent_config ticket."""
    return f"{PREFIX}wecom:agent_ticket:{corp_id}:{agent}"


# --- conversations -------------------------------------------------------------------------
def conversation_suggestions(conversation_id: str) -> str:
    """The latest reply suggestions for a conversation (written by the pipeline, read by the API)."""
    return f"{PREFIX}conv:{conversation_id}:suggestions"


def flag_window(conversation_id: str, reason: str) -> str:
    """Held by the first message flagged for `reason` in a conversation within the flag window."""
    return f"{PREFIX}flagwin:{conversation_id}:{reason}"


ARCHIVE_PULL_LOCK = f"{PREFIX}archive:pull_lock"  # one archive puller at a time


# --- 客服 (WeCom Customer Service) ------------------------------------------------------------
def kf_cursor(open_kfid: str) -> str:
    return f"{PREFIX}kf:cursor:{open_kfid}"


def kf_seen(msgid: str) -> str:
    return f"{PREFIX}kf:seen:{msgid}"


# --- jobs ----------------------------------------------------------------------------------
MINING_DAILY = f"{PREFIX}mining:daily"  # one process mines draft scripts per day

"""Every Redis key the service uses, built in one place (as arq's constants module)."""
from __future__ import annotations

PREFIX = "copilot:"


def dedupe(key: str) -> str:
    return f"{PREFIX}dedupe:{key}"


def access_token(corp_id: str, agent: str) -> str:
    return f"{PREFIX}wecom:access_token:{corp_id}:{agent}"


def access_token_lock(corp_id: str, agent: str) -> str:
    return f"{PREFIX}wecom:access_token_lock:{corp_id}:{agent}"


def dead_letter(stream: str) -> str:
    return f"{stream}:dead"


CONSUMER_GROUP = "workers"


def relay(relay_id: str, field: str) -> str:
    # The hash tag keeps one relay's keys in one Redis Cluster slot, as its Lua scripts need.
    return f"{PREFIX}relay:{{{relay_id}}}:{field}"


def auth_failures(scope: str, window: int) -> str:
    """Failed token attempts in one fixed window; scope is `all` or `ip:<address>`."""
    return f"{PREFIX}authfail:{scope}:{window}"


MINING_DAILY = f"{PREFIX}mining:daily"  # one process mines draft scripts per day

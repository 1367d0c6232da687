"""Prometheus metrics, one registry per app (no process-global collectors)."""
from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter("copilot_http_requests_total", "HTTP requests", ["route", "method", "status"], registry=r)
        self.latency = Histogram(
            "copilot_http_request_seconds", "HTTP request latency", ["route"], registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.callbacks = Counter("copilot_callbacks_total", "WeCom callbacks by outcome", ["outcome"], registry=r)
        self.callback_rejected = Counter("copilot_callback_rejected_total", "Rejected callbacks", ["reason"], registry=r)
        self.queue_depth = Gauge("copilot_queue_depth", "Event stream depth", ["state"], registry=r)
        self.worker_entries = Counter("copilot_worker_entries_total", "Stream entries handled", ["result"], registry=r)
        self.wecom_calls = Counter("copilot_wecom_api_calls_total", "Outbound WeCom calls", ["path", "outcome"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)

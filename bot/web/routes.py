"""The route table: every HTTP route and the view that answers it (docs/openapi.yaml lists the same
routes; tests/test_openapi.py checks the two agree)."""
from __future__ import annotations

from aiohttp import web

from bot.web import (admin_api, analytics_api, callback, conversations_api, knowledge_api, labels_api, models_api,
                     nlp_api, pages, relay_api, system)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/healthz", system.healthz)
    r.add_get("/metrics", system.metrics)
    r.add_get("/wecom/callback", callback.verify_url)
    r.add_post("/wecom/callback", callback.receive)
    r.add_post("/api/v1/tokens", admin_api.create_token)
    r.add_get("/api/v1/tokens", admin_api.list_tokens)
    r.add_delete("/api/v1/tokens/{id}", admin_api.revoke_token)
    r.add_post("/api/v1/channels", admin_api.upsert_channel)
    r.add_get("/api/v1/channels", admin_api.list_channels)
    r.add_post("/api/v1/analyze", nlp_api.analyze)
    r.add_get("/api/v1/lexicons", nlp_api.list_lexicons)
    r.add_post("/api/v1/lexicons/{category}", nlp_api.add_lexicon_terms)
    r.add_get("/api/v1/scripts", knowledge_api.list_scripts)
    r.add_post("/api/v1/scripts", knowledge_api.create_script)
    r.add_post("/api/v1/scripts/import", knowledge_api.import_scripts)
    r.add_get("/api/v1/scripts/export", knowledge_api.export_scripts)
    r.add_get("/api/v1/scripts/{id}", knowledge_api.get_script)
    r.add_put("/api/v1/scripts/{id}", knowledge_api.put_script)
    r.add_delete("/api/v1/scripts/{id}", knowledge_api.delete_script)
    r.add_post("/api/v1/suggestions", knowledge_api.suggestions)
    r.add_post("/api/v1/suggestions/{id}/feedback", knowledge_api.feedback)
    r.add_post("/api/v1/knowledge/reembed", knowledge_api.reembed)
    r.add_post("/api/v1/labels", labels_api.add_labels)
    r.add_get("/api/v1/labels/queue", labels_api.label_queue)
    r.add_get("/api/v1/labels/allow-proposals", labels_api.allow_proposals)
    r.add_get("/api/v1/models", models_api.list_models)
    r.add_post("/api/v1/models/train", models_api.train)
    r.add_get("/api/v1/models/jobs/{id}", models_api.job)
    r.add_post("/api/v1/models/{version}/promote", models_api.promote)
    r.add_post("/api/v1/archive", conversations_api.ingest_archive)
    r.add_get("/api/v1/conversations", conversations_api.list_conversations)
    r.add_get("/api/v1/conversations/{id}/messages", conversations_api.conversation_messages)
    r.add_get("/api/v1/flags", conversations_api.list_flags)
    r.add_post("/api/v1/flags/{id}/review", conversations_api.review_flag)
    r.add_get("/api/v1/analytics/groups", analytics_api.groups)
    r.add_get("/api/v1/analytics/customers", analytics_api.customers)
    r.add_get("/api/v1/analytics/dormant", analytics_api.dormant)
    r.add_get("/api/v1/analytics/response-times", analytics_api.response_times)
    r.add_get("/api/v1/analytics/daily", analytics_api.daily)
    pages.add_page_routes(app)
    r.add_post("/api/v1/relays", relay_api.create_relay)
    r.add_get("/api/v1/relays", relay_api.list_relays)
    r.add_get("/api/v1/relays/{id}", relay_api.get_relay)
    r.add_post("/api/v1/relays/{id}/messages", relay_api.relay_message)
    r.add_post("/api/v1/relays/{id}/close", relay_api.close_relay)
    r.add_get("/api/v1/relays/{id}/export.csv", relay_api.export_relay)

"""Mining best-seller replies from stored conversations into draft scripts.

A staff reply that answers a customer question counts as *converting* when the same customer,
within `window_hours`, shows buying intent (purchase_intent or relay_signup) or signs up to a
relay. Near-duplicate replies are clustered (cosine ≥ `cluster_threshold` of their embeddings); a
cluster is ranked by the Wilson lower bound of its conversion rate, and proposed as a draft
script (status `draft`) for trainers to approve. Re-running updates the same drafts (ids come
from the cluster's representative reply) and never touches a script a trainer approved.
"""
from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.sql import analyses, messages, relay_events
from knowledge.scripts import ScriptInput

QUESTION_INTENTS = {"price_inquiry", "promotion", "product_info", "purchase_intent", "shipping", "return_refund",
                    "membership", "store_visit"}
BUYING_INTENTS = {"purchase_intent", "relay_signup"}


@dataclass
class Candidate:
    question: str
    reply: str
    staff: str
    customer: str
    at: int
    converted: bool = False


@dataclass
class Cluster:
    replies: list[Candidate] = field(default_factory=list)

    @property
    def uses(self) -> int:
        return len(self.replies)

    @property
    def conversions(self) -> int:
        return sum(c.converted for c in self.replies)

    def score(self) -> float:
        """Wilson lower bound (95 %) of the conversion rate: rewards evidence, not luck."""
        n, p, z = self.uses, self.conversions / self.uses, 1.96
        return (p + z * z / (2 * n) - z * math.sqrt((p * (1 - p) + z * z / (4 * n)) / n)) / (1 + z * z / n)

    def representative(self) -> tuple[str, str]:
        # The reply staff used most among those that converted.
        reply = Counter(c.reply for c in self.replies if c.converted).most_common(1)[0][0]
        question = Counter(c.question for c in self.replies).most_common(1)[0][0]
        return question, reply


async def candidates(engine: AsyncEngine, since_ms: int, window_hours: int = 24) -> list[Candidate]:
    async with engine.connect() as conn:
        rows = (await conn.execute(
            sa.select(messages.c.conversation_id, messages.c.sender_id, messages.c.role, messages.c.msgtime,
                      messages.c.text, analyses.c.intent)
            .select_from(messages.outerjoin(analyses, analyses.c.msgid == messages.c.msgid))
            .where(messages.c.conversation_id.like("p:%"), messages.c.action == "send", messages.c.recalled.is_(False),
                   messages.c.msgtime >= since_ms, messages.c.text.is_not(None))
            .order_by(messages.c.conversation_id, messages.c.msgtime))).all()
        signups = (await conn.execute(sa.select(relay_events.c.sender_id, relay_events.c.at)
                                      .where(relay_events.c.kind == "join", relay_events.c.at >= since_ms / 1000))).all()
    signup_times: dict[str, list[int]] = defaultdict(list)
    for sender, at in signups:
        signup_times[sender].append(int(at * 1000))
    by_conv: dict[str, list] = defaultdict(list)
    for r in rows:
        by_conv[r.conversation_id].append(r)
    window = window_hours * 3600 * 1000
    out: list[Candidate] = []
    for msgs in by_conv.values():
        for i, m in enumerate(msgs):
            if m.role != "staff" or i == 0:
                continue
            prev = msgs[i - 1]
            if prev.role != "customer" or prev.intent not in QUESTION_INTENTS or len(m.text.strip()) < 4:
                continue
            cand = Candidate(prev.text, m.text.strip(), m.sender_id, prev.sender_id, m.msgtime)
            later = [x for x in msgs[i + 1:] if x.msgtime - m.msgtime <= window]
            cand.converted = any(x.role == "customer" and x.intent in BUYING_INTENTS for x in later) or \
                any(0 <= t - m.msgtime <= window for t in signup_times.get(prev.sender_id, []))
            out.append(cand)
    return out


def cluster(cands: list[Candidate], vectors: np.ndarray, threshold: float = 0.9) -> list[Cluster]:
    """Greedy single pass: each reply joins the first cluster whose centroid is close enough."""
    clusters: list[Cluster] = []
    centroids: list[np.ndarray] = []
    for cand, vec in zip(cands, vectors):
        if centroids:
            sims = np.array(centroids) @ vec
            best = int(sims.argmax())
            if sims[best] >= threshold:
                clusters[best].replies.append(cand)
                c = centroids[best] * (clusters[best].uses - 1) + vec
                centroids[best] = c / (np.linalg.norm(c) or 1.0)
                continue
        clusters.append(Cluster([cand]))
        centroids.append(vec)
    return clusters


def draft_id(reply: str) -> str:
    return "mined_" + hashlib.blake2b(reply.encode(), digest_size=6).hexdigest()


async def mine(engine: AsyncEngine, knowledge, since_ms: int, min_uses: int = 3, top: int = 50,
               window_hours: int = 24, cluster_threshold: float = 0.9) -> list[dict]:
    """Propose the best converting reply clusters as draft scripts; returns what was proposed."""
    cands = await candidates(engine, since_ms, window_hours)
    if not cands:
        return []
    vectors = await knowledge.encode([c.reply for c in cands])
    ranked = sorted((c for c in cluster(cands, vectors, cluster_threshold) if c.uses >= min_uses and c.conversions),
                    key=lambda c: -c.score())[:top]
    proposals, inputs = [], []
    for c in ranked:
        question, reply = c.representative()
        sid = draft_id(reply)
        existing = await knowledge.store.get(sid)
        status = existing.status if existing else "draft"  # never demote an approved script
        inputs.append(ScriptInput(id=sid, question=question, reply=reply, status=status, source="mined",
                                  scenario="挖掘", tags=["挖掘"]))
        proposals.append({"id": sid, "question": question, "reply": reply, "uses": c.uses, "conversions": c.conversions,
                          "conversion_rate": round(c.conversions / c.uses, 3), "score": round(c.score(), 3),
                          "staff": sorted({x.staff for x in c.replies}), "status": status})
    if inputs:
        await knowledge.upsert(inputs)
        for p in proposals:
            await knowledge.store.merge_stats(p["id"], {"mined": {k: p[k] for k in ("uses", "conversions", "conversion_rate",
                                                                                   "score", "staff")}})
    return proposals

"""The learning loop end to end, through the HTTP API of a real server (issue 12).

    python bench/learning_loop_demo.py [--models-dir var/test-models]

Starts `server.py` on embedded stores in a temporary data dir (with its stream worker and
schedule, so the training job runs the way it does in production: the schedule's runner starts
`python -m training run-job` in a child process), then shows three loops:

1. a new product nickname the shipped intent model misreads → a trainer labels 30 messages →
   a training job → the candidate passes the gate → promoted → the running server answers with
   the new version within seconds → rollback restores the old answers;
2. QA dismissing the same lexicon match three times → an allow-list proposal → accepted → the
   pattern no longer flags;
3. staff picking a script for wording it missed → an alternative-question proposal → accepted →
   the script ranks first for that wording.

Without --models-dir the base models are trained at the server's first start (a few minutes).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from netutil import free_port  # noqa: E402

ADMIN = "demo-admin-token-0123456789"
NICK = "退货宝"  # a (made-up) stain remover; the shipped model reads 退货 and answers return_refund
TEACH = [f"{NICK}{q}" for q in (
    "多少毫升一瓶", "能洗羊毛衫吗", "对猫咪有没有刺激", "是进口的吗", "哪里生产的", "香味重不重", "洗完要过清水吗",
    "能不能用在白衬衫上", "有大瓶装吗", "和84比哪个好", "能去血渍吗", "开封以后能放多久", "小孩衣服能用吗",
    "要稀释吗", "是喷的还是倒的", "可以机洗吗", "油渍也能洗掉吗", "对手有伤害吗", "适合羽绒服吗", "味道好闻吗",
    "去黄效果怎么样", "是浓缩的吗", "成分表发我看看", "有没有荧光剂", "红酒渍能洗吗", "放洗衣机里用还是手洗",
    "几岁宝宝能用", "真丝能用吗", "沙发布能用吗", "有替换装吗")]
PROBES = [f"{NICK}{q}" for q in ("还有货吗", "怎么用", "保质期多久", "是什么成分", "适合敏感肌吗", "有几个规格")]


class Api:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def call(self, method: str, path: str, body=None, token: str = ADMIN):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")
        except urllib.error.URLError:
            return 0, None  # not listening yet

    def ok(self, method: str, path: str, body=None, token: str = ADMIN):
        status, out = self.call(method, path, body, token)
        if status >= 300:
            raise SystemExit(f"{method} {path} -> {status} {out}")
        return out

    def token(self, role: str, name: str, userid: str | None = None) -> str:
        return self.ok("POST", "/api/v1/tokens", {"role": role, "name": name, **({"userid": userid} if userid else {})})["token"]


def wait_until(check, timeout: float, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise SystemExit("timed out")


def intents(api: Api, token: str, texts) -> tuple[list[str], str]:
    items = api.ok("POST", "/api/v1/analyze", {"items": [{"text": t} for t in texts]}, token)["items"]
    return [i["intent"]["label"] for i in items], items[0]["models"]["intent"]


def nickname_loop(api: Api) -> None:
    trainer = api.token("trainer", "培训师")
    print(f"\n## 1. a new product nickname: {NICK}")
    before, base = intents(api, trainer, PROBES)
    print(f"shipped model ({base}): {before}")
    api.ok("POST", "/api/v1/labels", {"items": [{"task": "intent", "text": t, "label": "product_info"} for t in TEACH]},
           trainer)
    print(f"trainer labelled {len(TEACH)} messages product_info")
    t0 = time.monotonic()
    job = api.ok("POST", "/api/v1/models/train", {"task": "intent"}, trainer)["job_id"]
    done = wait_until(lambda: (lambda j: j if j["status"] in ("done", "failed") else None)(
        api.ok("GET", f"/api/v1/models/jobs/{job}", token=trainer)), 600, 2.0)
    if done["status"] != "done":
        raise SystemExit(f"training failed: {done['error']}")
    cand = next(v for v in api.ok("GET", "/api/v1/models?task=intent", token=trainer)["items"]
                if v["version"] == done["version"])
    print(f"job {job} trained {cand['version']} in {time.monotonic() - t0:.0f}s; gate: candidate "
          f"{cand['metrics']['gate']} vs active {cand['metrics']['baseline']['gate']}")
    status, out = api.call("POST", f"/api/v1/models/{cand['version']}/promote", {}, trainer)
    print(f"promote -> {status} {out.get('status') if status == 200 else out}")
    t0 = time.monotonic()
    after, version = wait_until(lambda: (lambda r: r if r[1] == cand["version"] else None)(
        intents(api, trainer, PROBES)), 30, 0.25)
    print(f"served by {version} after {time.monotonic() - t0:.1f}s: {after}")
    api.ok("POST", f"/api/v1/models/{base}/promote", {}, trainer)
    back, version = wait_until(lambda: (lambda r: r if r[1] == base else None)(intents(api, trainer, PROBES)), 30, 0.25)
    print(f"rolled back to {version}: {back} ({'same as before' if back == before else 'DIFFERENT from before'})")


def allow_list_loop(api: Api) -> None:
    print("\n## 2. QA keeps dismissing the same match")
    qa, trainer = api.token("qa", "质检"), api.token("trainer", "培训师2")
    now = int(time.time() * 1000)
    texts = [f"您好，{i}号分店的门店微信号是多少" for i in range(1, 4)]
    records = [{"msgid": f"demo-f{i}", "action": "send", "from": "zhangsan", "tolist": [f"wmDEMO{i}"],
                "msgtime": now + i, "msgtype": "text", "text": {"content": t}} for i, t in enumerate(texts)]
    api.ok("POST", "/api/v1/archive", {"items": records})
    flags = wait_until(lambda: [f for f in api.ok("GET", "/api/v1/flags?status=open&limit=50", token=qa)["items"]
                                if f["msgid"].startswith("demo-f")] or None, 60)
    wait_until(lambda: len([f for f in api.ok("GET", "/api/v1/flags?status=open&limit=50", token=qa)["items"]
                            if f["msgid"].startswith("demo-f")]) == 3 or None, 60)
    flags = [f for f in api.ok("GET", "/api/v1/flags?status=open&limit=50", token=qa)["items"]
             if f["msgid"].startswith("demo-f")]
    print(f"{len(flags)} flags ({flags[0]['reason']}); QA dismisses each")
    for f in flags:
        api.ok("POST", f"/api/v1/flags/{f['id']}/review", {"verdict": "dismissed", "note": "门店公众号，不是私人微信"}, qa)
    proposals = api.ok("GET", "/api/v1/labels/allow-proposals", token=trainer)["items"]
    print(f"allow-list proposals: {proposals}")
    if not proposals:
        return
    api.ok("POST", "/api/v1/lexicons/allow", {"terms": [{"term": f"门店{proposals[0]['match']}"}]})
    check = api.ok("POST", "/api/v1/analyze", {"text": "9号分店的门店微信号是多少", "role": "staff"}, trainer)
    still = api.ok("POST", "/api/v1/analyze", {"text": "加我私人微信号，私下转账便宜", "role": "staff"}, trainer)
    print(f"after the admin allows 门店{proposals[0]['match']}: the pattern flags {check['flagged']}; "
          f"a real diversion still flags {still['flagged']}")


def alternatives_loop(api: Api) -> None:
    print("\n## 3. staff pick a script for wording it missed")
    trainer, staff = api.token("trainer", "培训师3"), api.token("staff", "导购", "zhangsan")
    script = {"id": "demo-clean", "question": "衣服上的油渍怎么洗", "reply": "先用洗洁精点涂油渍处揉两分钟，再正常机洗就好～",
              "tags": ["家清"]}
    other = {"id": "demo-ship", "question": "多久能发货", "reply": "下单后 48 小时内发货，顺丰包邮～", "tags": []}
    body = "\n".join(json.dumps(s, ensure_ascii=False) for s in (script, other))
    req = urllib.request.Request(api.base + "/api/v1/scripts/import", data=body.encode(), method="POST",
                                 headers={"Authorization": f"Bearer {trainer}", "Content-Type": "application/x-ndjson"})
    urllib.request.urlopen(req, timeout=30).read()
    query = "火锅汤溅到白T恤上了 咋整啊"
    top = [s["script_id"] for s in api.ok("POST", "/api/v1/suggestions", {"text": query}, staff)["suggestions"]]
    print(f"'{query}' -> {top or 'no suggestion'}")
    for _ in range(2):
        api.ok("POST", f"/api/v1/suggestions/{script['id']}/feedback", {"adopted": True, "query": query}, staff)
    proposal = api.ok("GET", "/api/v1/suggestions/proposals", token=trainer)["items"][0]
    print(f"proposal: '{proposal['query']}' as an alternative of '{proposal['question']}' (picked {proposal['picked']}x)")
    api.ok("POST", f"/api/v1/suggestions/proposals/{proposal['id']}", {"accept": True}, trainer)
    top = [s["script_id"] for s in api.ok("POST", "/api/v1/suggestions", {"text": query}, staff)["suggestions"]]
    print(f"after accepting: '{query}' -> {top}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--models-dir", help="reuse trained base models (default: train them at first start)")
    a = p.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        env.update({"COPILOT_ADMIN_TOKEN": ADMIN, "COPILOT_DATA_DIR": d, "COPILOT_PORT": str(port),
                    "COPILOT_HOST": "127.0.0.1"})
        if a.models_dir:
            env["COPILOT_MODELS_DIR"] = str(Path(a.models_dir).resolve())
        server = subprocess.Popen([sys.executable, "server.py"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            api = Api(port)
            wait_until(lambda: api.call("GET", "/healthz")[0] == 200 if server.poll() is None else
                       sys.exit("server exited"), 900, 1.0)
            nickname_loop(api)
            allow_list_loop(api)
            alternatives_loop(api)
        finally:
            server.terminate()
            server.wait(timeout=60)


if __name__ == "__main__":
    main()

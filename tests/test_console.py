"""The consoles and the sidebar in headless Chromium against the real app (real HTTP, real stores).
Screenshots of every page are saved under test-artifacts/."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from server import create_app, make_worker
from tests.test_archive import rec

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (.ci/run installs it)")
XSS = '<img src=x onerror="window.__xss=1">'


@pytest.fixture
async def live(aiohttp_server, settings):
    server = await aiohttp_server(create_app(settings, run_workers=False))
    return server


@pytest.fixture
async def browser():
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
            "--no-first-run", "--disable-component-update", "--disable-sync"])
        yield b
        await b.close()


async def token_for(live, admin_headers, role, name, userid=None):
    import aiohttp

    body = {"role": role, "name": name, **({"userid": userid} if userid else {})}
    async with aiohttp.ClientSession() as s:
        async with s.post(str(live.make_url("/api/v1/tokens")), json=body, headers=admin_headers) as r:
            return (await r.json())["token"]


async def login(browser, live, token, path="/console"):
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.goto(str(live.make_url(path)))
    await page.fill("#token", token)
    # The login answers, then the page reloads itself: wait for that reload (a goto racing it is aborted).
    async with page.expect_navigation():
        await page.click("#login-form button")
    await page.wait_for_load_state("networkidle")
    return page


async def shot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def test_qa_works_a_flag_and_xss_is_inert(browser, live, parts, admin_headers):
    stored, _ = await parts.conversations.ingest([
        __import__("bot.conversations.records", fromlist=["ArchiveRecord"]).ArchiveRecord.parse(r) for r in [
            rec("x1", "wmXSS", XSS + " 你们是骗子，傻逼", t=1),
            rec("x2", "zhangsan", "加我个人微信，私下转账", to="wmXSS", t=2)]])
    await parts.pipeline.process(stored)
    page = await login(browser, live, await token_for(live, admin_headers, "qa", "质检小李"))
    await page.wait_for_selector("#flags tr.clickable")
    await page.wait_for_selector(".msg.focus")
    # the payload is shown as text, never run
    assert await page.evaluate("window.__xss") is None
    assert XSS in await page.inner_text("#flag-detail")
    assert await page.locator("#flag-detail img").count() == 0
    assert await page.locator("#flag-detail mark.hit").count() >= 1
    await shot(page, "qa-queue")
    first = await page.get_attribute("#flags tr.clickable", "data-id")
    await page.fill("#review-note", "确认违规")
    await page.keyboard.press("Escape")
    await page.click("#confirm")
    await page.wait_for_selector("#review-result .ok")
    flag = await parts.conversations.get_flag(first)
    assert flag["status"] == "confirmed" and flag["reviewed_by"] == "质检小李" and flag["note"] == "确认违规"


async def test_trainer_imports_edits_and_tries(browser, live, parts, admin_headers, tmp_path):
    page = await login(browser, live, await token_for(live, admin_headers, "trainer", "培训师"))
    await page.wait_for_selector("#scripts")
    csv_file = tmp_path / "scripts.csv"
    csv_file.write_text("id,question,reply,tags\nt1,面霜多少钱,580元一瓶,美妆\nt2,,缺少问题,\nt3,几点开门,"
                        + XSS.replace(",", "") + ",门店\n", encoding="utf-8")
    await page.set_input_files("#import-file", str(csv_file))
    await page.click("#import")
    await page.wait_for_selector("#import-errors li")
    assert "第 3 行" in await page.inner_text("#import-errors")
    await page.click("#scripts tr[data-id=t1]")
    await page.fill("#e-reply", "今天会员价 522 元")
    await page.click("#e-save")
    await page.wait_for_selector("#e-msg .ok")
    await page.fill("#try-text", "面霜啥价")
    await page.click("#try")
    await page.wait_for_selector("#try-list li")
    assert "522" in await page.inner_text("#try-list li >> nth=0")
    assert await page.evaluate("window.__xss") is None
    await shot(page, "trainer")


async def test_operator_relay_updates_live(browser, live, parts, admin_headers):
    page = await login(browser, live, await token_for(live, admin_headers, "staff", "店长", userid="dianzhang"))
    await page.wait_for_selector("#relay-form")
    await page.fill("#r-chat", "wrLIVE")
    await page.fill("#r-title", "大闸蟹")
    await page.fill("#r-stock", "3")
    await page.click("#r-create")
    await page.wait_for_selector("#relay-list")
    rid = (await parts.relays.list("open"))[0]["id"]
    await parts.relays.handle_message(rid, "wmA", "顾客A", "+2", "m1")
    from playwright.async_api import expect

    # Pages ship a strict CSP (no eval), so wait with locators rather than wait_for_function.
    await expect(page.locator("#relay-list")).to_contain_text("顾客A 2份", timeout=6000)
    assert "剩余 1/3" in await page.inner_text("#relay-remaining")
    await shot(page, "operator")


async def test_sidebar_manual_mode_suggests(browser, live, parts, admin_headers):
    from knowledge.scripts import ScriptInput

    await parts.knowledge.upsert([ScriptInput(id="ship", question="什么时候发货", reply="下午4点前付款当天发出")])
    page = await login(browser, live, await token_for(live, admin_headers, "staff", "小王", userid="xiaowang"), "/sidebar")
    await page.set_viewport_size({"width": 360, "height": 720})
    await page.wait_for_selector("#customer-text")
    assert "手动模式" in await page.inner_text("#mode")
    await page.fill("#customer-text", "今天能发货吗")
    await page.click("#suggest")
    await page.wait_for_selector(".suggestion")
    assert "当天发出" in await page.inner_text(".suggestion .reply")
    await page.click(".suggestion .adopt")
    from playwright.async_api import expect

    await expect(page.locator(".suggestion .row .muted")).to_contain_text("已采纳")
    assert (await parts.knowledge.store.get("ship")).stats["adopted"] == 1
    await shot(page, "sidebar")


async def test_staff_refused_on_trainer_page_and_api_needs_csrf(browser, live, parts, admin_headers):
    page = await login(browser, live, await token_for(live, admin_headers, "staff", "s", userid="s1"), "/console#trainer")
    await page.goto(str(live.make_url("/console#trainer")))
    await page.wait_for_selector("#nav")
    assert await page.locator("#tab-trainer").count() == 0
    await page.evaluate("location.hash = 'trainer'")
    status = await page.evaluate("""async () => (await fetch('/api/v1/scripts', {method: 'POST',
        headers: {'Content-Type': 'application/json'}, body: JSON.stringify({question: 'q', reply: 'r'})})).status""")
    assert status == 403  # no CSRF token: refused even before the role check
    await shot(page, "staff-console")
    resp = await page.request.get(str(live.make_url("/console")))
    assert "default-src 'self'" in resp.headers["content-security-policy"]
    cookies = await page.context.cookies()
    session = next(c for c in cookies if c["name"] == "copilot_session")
    assert session["httpOnly"] and session["sameSite"] == "Strict"


async def test_trainer_labels_the_queue_with_the_keyboard_and_sees_the_registry(browser, live, parts, admin_headers):
    from bot.conversations.records import ArchiveRecord
    from storage.sql import labels
    import sqlalchemy as sa

    texts = ["那个东西", "嗯嗯好的吧", "你们几点开门", "有没有别的颜色"]
    stored, _ = await parts.conversations.ingest([ArchiveRecord.parse(rec(f"lq{i}", "wmLAB", t, t=10 + i))
                                                  for i, t in enumerate(texts)]
                                                 + [ArchiveRecord.parse(rec("lq9", "zhangsan", "亲，您说的是哪一款呢", to="wmLAB", t=20))])
    await parts.pipeline.process(stored)
    page = await login(browser, live, await token_for(live, admin_headers, "trainer", "培训师"), "/console#labels")
    await page.goto(str(live.make_url("/console#labels")))
    await page.wait_for_selector("#label-text")
    await page.wait_for_selector("#registry tr[data-version]")
    await shot(page, "labels")
    first = await page.inner_text("#label-text")
    assert first in texts
    assert await page.locator("#label-card .context .msg").count() >= 1  # the conversation around it
    await page.keyboard.press("4")            # product_info (the 4th intent)
    await page.wait_for_function("(t) => document.querySelector('#label-text') && "
                                 "document.querySelector('#label-text').innerText !== t", arg=first)
    await page.keyboard.press("z")            # undo: back to the first item …
    await page.wait_for_function("(t) => document.querySelector('#label-text').innerText === t", arg=first)
    await page.keyboard.press("c")            # … and 'c' is no label: nothing happens
    await page.keyboard.press("1")            # relabelled greeting: the latest wins
    await page.wait_for_function("(t) => document.querySelector('#label-text')?.innerText !== t", arg=first)
    async with parts.engine.connect() as conn:
        rows = (await conn.execute(sa.select(labels.c.text, labels.c.label, labels.c.source)
                                   .where(labels.c.task == "intent"))).all()
    assert rows == [(first, "greeting", "api")]
    # the registry: the shipped versions are active, a retired one would offer a rollback
    assert await page.locator("#registry tr[data-version] .badge.active").count() == 3


async def test_operator_sees_customers_their_timeline_and_the_channel_tree(browser, live, parts, admin_headers):
    import time

    from bot.conversations.records import ArchiveRecord
    from bot.customers.profiles import ContactChange

    now = int(time.time() * 1000)
    stored, _ = await parts.conversations.ingest([ArchiveRecord.parse(rec("cu1", "wmVIP", "这款面霜多少钱", t=1)),
                                                  ArchiveRecord.parse(rec("cu2", "wmVIP", "那大瓶的呢多少钱", t=2))])
    await parts.pipeline.process(stored)
    await parts.channels.upsert(__import__("bot.channels", fromlist=["Channel"]).Channel("sh", "上海", "", ()))
    await parts.customers.contact_changed(ContactChange("add_external_contact", "zhangsan", "wmVIP", "sh", now))
    page = await login(browser, live, await token_for(live, admin_headers, "trainer", "运营"), "/console#customers")
    await page.goto(str(live.make_url("/console#customers")))
    await page.wait_for_selector("#customers tr.clickable")
    await page.click("#customers tr.clickable")
    await page.wait_for_selector("#timeline li")
    assert "这款面霜多少钱" in await page.inner_text("#timeline")
    assert "price_inquiry×2" in await page.inner_text("#customers")
    await page.wait_for_selector("#channel-tree li[data-state=sh]")
    assert "新增 1" in await page.inner_text("#channel-tree")
    await shot(page, "customers")


async def test_sidebar_materials_tab_lists_and_counts_a_use(browser, live, parts, admin_headers):
    from bot.groups.materials import MaterialInput

    mat = await parts.materials.create(MaterialInput(kind="text", title="冬季保湿攻略", content="早晚各一次，先精华后面霜"))
    page = await login(browser, live, await token_for(live, admin_headers, "staff", "小王", userid="xiaowang"), "/sidebar")
    await page.goto(str(live.make_url("/sidebar")))
    await page.wait_for_selector(f".material[data-id='{mat['id']}']")
    await page.click(f".material[data-id='{mat['id']}'] button.use")
    await page.wait_for_function("() => [...document.querySelectorAll('.material .muted')].some(e => /已/.test(e.textContent))")
    assert (await parts.materials.get(mat["id"]))["stats"]["uses"] == 1
    await shot(page, "sidebar-materials")


async def test_first_run_page_guides_each_role(browser, live, parts, admin_headers):
    page = await login(browser, live, await token_for(live, admin_headers, "qa", "质检"), "/console#start")
    await page.goto(str(live.make_url("/console#start")))
    await page.wait_for_selector("#guide li")
    text = await page.inner_text("#start")
    assert "质检 QA" in text and "管理 Admin" not in text  # only the pages this role may open
    assert "python server.py --demo" in text                # no data yet: how to get some
    await shot(page, "start")


async def test_owner_works_an_order_on_the_work_order_page_and_sees_team_figures(browser, live, parts, admin_headers):
    from bot.conversations.records import ArchiveRecord

    stored, _ = await parts.conversations.ingest([ArchiveRecord.parse(rec("wo1", "wmUPSET", "你们这面霜用了过敏，太差劲了，我要投诉！", t=1))])
    await parts.pipeline.process(stored)
    page = await login(browser, live, await token_for(live, admin_headers, "qa", "质检"), "/console#work-orders")
    await page.goto(str(live.make_url("/console#work-orders")))
    await page.wait_for_selector("#work-orders tr.clickable")
    await page.click("#work-orders tr.clickable")
    await page.wait_for_selector("#wo-events li")
    await page.fill("#wo-note", "已电话安抚并退款")
    await page.click("#work-order-detail button[data-to=resolved]")
    # Once resolved, only closing is left to do.
    await page.wait_for_function("() => !document.querySelector('#work-order-detail button[data-to=resolved]')"
                                 " && document.querySelector('#work-order-detail button[data-to=closed]')")
    [order] = (await parts.work_orders.list())[0]
    assert order["status"] == "resolved"
    await page.wait_for_selector("#work-order-figures tr[data-owner]")
    # The figures reload after the change; the table from before it may still be showing for a moment.
    await page.wait_for_function("() => document.querySelector('#work-order-figures').innerText.includes('100%')",
                                 timeout=10000)
    assert "100%" in await page.inner_text("#work-order-figures")
    await shot(page, "work-orders")


async def test_operator_sees_groups_sop_stores_and_fission_on_the_groups_page(browser, live, parts, admin_headers):
    from bot.customers.stores import StoreInput
    from bot.groups.sop import PlanInput
    from storage.sql import groups as groups_table

    async with parts.engine.begin() as conn:
        await conn.execute(groups_table.insert().values(chat_id="wrVIP1", name="VIP 老客群", owner="zhangsan", status="active",
                                                        member_count=88, joins=5, leaves=1, updated_at=1))
    await parts.sop.create(PlanInput(name="VIP 周计划", group_type="vip", posts=[
        {"weekday": 1, "time": "10:00", "kind": "practical", "text": "本周护肤小知识"}]))
    await parts.stores.add([StoreInput(id="s1", name="静安店", lat=31.2245, lng=121.4460),
                            StoreInput(id="s2", name="徐汇店", lat=31.1880, lng=121.4365)])
    page = await login(browser, live, await token_for(live, admin_headers, "trainer", "运营"), "/console#groups")
    await page.goto(str(live.make_url("/console#groups")))
    await page.wait_for_selector("#groups tr[data-chat=wrVIP1]")
    await page.fill("#groups tr[data-chat=wrVIP1] input.group-type", "vip")
    await page.press("#groups tr[data-chat=wrVIP1] input.group-type", "Tab")
    for _ in range(50):
        if (await parts.groups.get("wrVIP1"))["type"] == "vip":
            break
        await page.wait_for_timeout(50)
    assert (await parts.groups.get("wrVIP1"))["type"] == "vip"
    assert "VIP 周计划" in await page.inner_text("#sop-plans")
    await page.fill("#n-lat", "31.2300")
    await page.fill("#n-lng", "121.4450")
    await page.click("#n-search")
    await page.wait_for_selector("#nearest li")
    assert (await page.inner_text("#nearest li")).startswith("静安店")
    assert "还没有裂变活动" in await page.inner_text("#fission")
    await shot(page, "groups")


async def test_a_customer_answers_the_survey_page(browser, live, parts, admin_headers):
    from bot.conversations.records import ArchiveRecord

    stored, _ = await parts.conversations.ingest([ArchiveRecord.parse(rec("sv1", "wmCROSS", "你们这面霜用了过敏，太差劲了，我要投诉！", t=1))])
    await parts.pipeline.process(stored)
    [order] = (await parts.work_orders.list())[0]
    await parts.work_orders.transition(order["id"], "resolved", "qa:test")
    survey = await parts.surveys.ensure(order["id"])
    page = await browser.new_page(viewport={"width": 400, "height": 700})
    await page.goto(str(live.make_url(f"/survey/{survey['token']}")))
    await page.click("button.star[data-rating='5']")
    await page.fill("#comment", "处理很快，谢谢")
    await page.click("#send")
    await page.wait_for_selector("#thanks")
    assert (await parts.surveys.for_order(order["id"]))["rating"] == 5
    assert (await parts.work_orders.get(order["id"]))["status"] == "resolved"
    await shot(page, "survey")


async def test_trainer_saves_a_segment_and_starts_a_campaign_from_the_customers_page(browser, live, parts, admin_headers, fake_wecom):
    import time
    from datetime import datetime, timezone

    from bot.customers.profiles import ContactChange
    from storage.sql import customer_tags, dialect_insert

    now = int(time.time() * 1000)
    for cid in ("wmSEG1", "wmSEG2"):
        await parts.customers.contact_changed(ContactChange("add_external_contact", "zhangsan", cid, None, now))
    async with parts.engine.begin() as conn:
        await conn.execute(dialect_insert(parts.engine, customer_tags).values(
            customer_id="wmSEG1", tag="高意向", source="api", added_at=datetime.now(timezone.utc)))
    page = await login(browser, live, await token_for(live, admin_headers, "trainer", "运营"), "/console#customers")
    await page.goto(str(live.make_url("/console#customers")))
    await page.wait_for_selector("#segment-form")
    await page.fill("#seg-name", "高意向客户")
    await page.fill("#seg-tags", "高意向")
    await page.click("#segment-form button[type=submit]")
    await page.wait_for_selector("#segments [data-id]")
    assert "1 人" in await page.inner_text("#seg-msg")
    await page.wait_for_selector("#camp-segment option", state="attached")
    await page.fill("#camp-name", "周末回访")
    await page.fill("#camp-text", "周末到店有小礼物，欢迎来坐坐～")
    await page.click("#campaign-form button[type=submit]")
    await page.wait_for_selector("#campaigns tr[data-id]")
    [campaign] = await parts.campaigns.list(5)
    assert campaign["name"] == "周末回访" and campaign["funnel"]["targeted"] == 1
    await shot(page, "customers-forms")


async def fill_rule(page, name, tag, kind, label=None, count=None, days=None, remove=True):
    await page.fill("#tr-name", name)
    await page.fill("#tr-tag", tag)
    await page.select_option("#tr-kind", kind)
    if label is not None:
        await page.select_option("#tr-label", label)
    if count is not None:
        await page.fill("#tr-count", str(count))
    if days is not None:
        await page.fill("#tr-days", str(days))
    await page.set_checked("#tr-remove", remove)


async def test_trainer_creates_edits_runs_and_deletes_tag_rules_from_the_customers_page(browser, live, parts, admin_headers):
    from playwright.async_api import expect

    from bot.conversations.records import ArchiveRecord

    stored, _ = await parts.conversations.ingest([ArchiveRecord.parse(rec("tr1", "wmASK", "这款面霜多少钱", t=1)),
                                                  ArchiveRecord.parse(rec("tr2", "wmASK", "那大瓶的呢多少钱", t=2))])
    await parts.pipeline.process(stored)
    page = await login(browser, live, await token_for(live, admin_headers, "trainer", "运营"), "/console#customers")
    await page.goto(str(live.make_url("/console#customers")))
    await page.wait_for_selector("#tag-rule-form")
    await expect(page.locator("#tag-rules-empty")).to_contain_text("还没有自动标签规则")
    # the fields follow the kind of condition
    await page.select_option("#tr-kind", "dormant_days")
    assert not await page.is_visible("#tr-label") and not await page.is_visible("#tr-count")
    await page.select_option("#tr-kind", "intent")
    assert await page.is_visible("#tr-label") and await page.is_visible("#tr-count")

    # create: intent + min_count + days
    await fill_rule(page, "问价两次", "高意向", "intent", "price_inquiry", 2, 7)
    await page.click("#tr-save")
    await expect(page.locator("#tr-msg .ok")).to_contain_text("已创建「问价两次」")
    await expect(page.locator("#tag-rules tr[data-id]")).to_have_count(1)
    [rule] = await parts.tag_rules.list()
    assert rule["when"] == {"intent": "price_inquiry", "min_count": 2, "days": 7} and rule["remove_when_false"]
    row = page.locator(f"#tag-rules tr[data-id='{rule['id']}']")
    assert "近 7 天内意图 price_inquiry 出现至少 2 次" in await row.inner_text()
    assert "高意向" in await row.inner_text() and "移除标签" in await row.inner_text()

    # run it now, then the customers who hold the tag are one click away
    await page.click("#tr-run")
    await expect(page.locator("#tr-msg .ok")).to_contain_text("新增 1 个标签")
    await row.locator("button.show-customers").click()
    await expect(page.locator("#customers tr.clickable")).to_have_count(1)
    assert await page.get_attribute("#customers tr.clickable", "data-id") == "wmASK"

    # a value the API refuses: its message next to the form, the field marked, nothing saved
    await fill_rule(page, "太久", "久", "sentiment", "negative", 2, 5000)
    await page.click("#tr-save")
    await expect(page.locator("#tr-msg .error")).to_contain_text("when.days")
    assert await page.get_attribute("#tr-days", "aria-invalid") == "true"
    assert len(await parts.tag_rules.list()) == 1
    await shot(page, "customers-tag-rule-error")
    # the other `when` forms: sentiment, relays
    await page.fill("#tr-days", "3")
    await page.click("#tr-save")
    await expect(page.locator("#tr-msg .ok")).to_contain_text("已创建「太久」")
    assert await page.get_attribute("#tr-days", "aria-invalid") is None
    await fill_rule(page, "接龙达人", "常客", "relays_min", count=3, days=90, remove=False)
    await page.click("#tr-save")
    await expect(page.locator("#tag-rules tr[data-id]")).to_have_count(3)
    whens = {r["name"]: (r["when"], r["remove_when_false"]) for r in await parts.tag_rules.list()}
    assert whens["太久"] == ({"sentiment": "negative", "min_count": 2, "days": 3}, True)
    assert whens["接龙达人"] == ({"relays_min": 3, "days": 90}, False)

    # edit: the form takes the rule, saving replaces it (and text stays text)
    await row.locator("button.edit").click()
    assert await page.input_value("#tr-name") == "问价两次"
    assert await page.input_value("#tr-label") == "price_inquiry" and await page.input_value("#tr-days") == "7"
    await page.fill("#tr-name", XSS)
    await page.select_option("#tr-kind", "dormant_days")
    await page.fill("#tr-days", "30")
    await page.set_checked("#tr-remove", False)
    await page.set_checked("#tr-enabled", False)
    await page.click("#tr-save")
    await expect(page.locator("#tr-msg .ok")).to_contain_text("已修改")
    edited = await parts.tag_rules.get(rule["id"])
    assert edited["name"] == XSS and edited["when"] == {"dormant_days": 30}
    assert not edited["remove_when_false"] and not edited["enabled"]
    await expect(row).to_contain_text("30 天没有发过消息")
    assert XSS in await row.inner_text() and "停用" in await row.inner_text()
    assert await page.evaluate("window.__xss") is None and await page.locator("#tag-rules img").count() == 0
    assert await page.input_value("#tr-name") == ""  # the form is back to a new rule

    # delete asks first; cancelling keeps the rule
    await row.locator("button.delete").click()
    await row.locator("button.cancel-delete").click()
    await expect(page.locator("#tag-rules tr[data-id]")).to_have_count(3)
    await row.locator("button.delete").click()
    await shot(page, "customers-tag-rules")
    await row.locator("button.confirm-delete").click()
    await expect(page.locator("#tag-rules tr[data-id]")).to_have_count(2)
    assert await parts.tag_rules.get(rule["id"]) is None
    for left in (1, 0):  # one at a time: the list is redrawn after each delete
        await page.locator("#tag-rules tr[data-id] button.delete").first.click()
        await page.locator("#tag-rules tr[data-id] button.confirm-delete").click()
        await expect(page.locator("#tag-rules tr[data-id]")).to_have_count(left)
    await expect(page.locator("#tag-rules-empty")).to_be_visible()
    assert await parts.tag_rules.list() == []


async def test_qa_sees_tag_rules_read_only_and_staff_not_at_all(browser, live, parts, admin_headers):
    from playwright.async_api import expect

    from bot.customers.tag_rules import TagRuleInput

    rule = await parts.tag_rules.create(TagRuleInput.model_validate(
        {"name": "差评", "tag": "不满", "when": {"sentiment": "negative", "min_count": 2, "days": 3}}))
    page = await login(browser, live, await token_for(live, admin_headers, "qa", "质检"), "/console#customers")
    await page.goto(str(live.make_url("/console#customers")))
    await page.wait_for_selector(f"#tag-rules tr[data-id='{rule['id']}']")
    assert "近 3 天内情绪 negative 出现至少 2 次" in await page.inner_text("#tag-rules")
    await expect(page.locator("#tag-rules-readonly")).to_be_visible()
    assert await page.locator("#tag-rule-form").count() == 0
    assert await page.locator("#tag-rules button.edit, #tag-rules button.delete").count() == 0
    # and the API refuses the page's own calls (session and CSRF token included)
    statuses = await page.evaluate("""async (id) => {
        const out = [];
        for (const [m, p, b] of [["POST", "/api/v1/tag-rules", {name: "x", tag: "x", when: {dormant_days: 3}}],
                                 ["PUT", `/api/v1/tag-rules/${id}`, {name: "x", tag: "x", when: {dormant_days: 3}}],
                                 ["DELETE", `/api/v1/tag-rules/${id}`, undefined],
                                 ["POST", "/api/v1/tag-rules/run", {}]]) {
            try { await Copilot.api(m, p, b); out.push(200); } catch (e) { out.push(e.status); }
        }
        return out;
    }""", rule["id"])
    assert statuses == [403, 403, 403, 403]
    assert [r["name"] for r in await parts.tag_rules.list()] == ["差评"]

    staff = await login(browser, live, await token_for(live, admin_headers, "staff", "店员", userid="dianyuan"),
                        "/console#customers")
    await staff.goto(str(live.make_url("/console#customers")))
    await staff.wait_for_selector("#customers-empty")
    assert await staff.locator("#tag-rules-section").count() == 0
    assert await staff.evaluate("""async () => { try { await Copilot.api("GET", "/api/v1/tag-rules"); return 200; }
                                   catch (e) { return e.status; } }""") == 403


async def test_every_page_says_how_data_gets_in_when_it_has_none(browser, live, parts, admin_headers):
    """A fresh install: each page explains where its data comes from instead of showing a blank."""
    expect = {
        "qa": ("#qa-empty", "会话存档"),
        "trainer": ("#scripts-empty", "导入"),
        "operator": ("#relays-empty", "开团"),
        "customers": ("#customers-empty", "客户"),
        "groups": ("#groups", "change_external_chat"),
        "work-orders": ("#work-orders", "还没有工单"),
    }
    page = await login(browser, live, await token_for(live, admin_headers, "admin", "管理员"), "/console")
    for tab, (selector, words) in expect.items():
        await page.goto(str(live.make_url(f"/console#{tab}")))
        await page.reload()
        await page.wait_for_selector(selector)
        await page.wait_for_function("([s, w]) => document.querySelector(s) && document.querySelector(s).textContent.includes(w)",
                                     arg=[selector, words])
    # the customers page's tag rules say how to make one
    await page.goto(str(live.make_url("/console#customers")))
    await page.reload()
    await page.wait_for_selector("#tag-rules-empty")
    assert "用上面的表单" in await page.inner_text("#tag-rules-empty")
    await page.goto(str(live.make_url("/console#operator")))
    await page.reload()
    await page.wait_for_selector("#charts-empty")
    await shot(page, "empty-operator")

"use strict";
(() => {
  const { h, api, clear, highlighted, badge, fmtTime } = Copilot;
  const view = document.getElementById("view");
  const TABS = [
    { id: "qa", label: "质检 QA", roles: ["qa"], render: renderQA },
    { id: "trainer", label: "话术 Trainer", roles: ["trainer"], render: renderTrainer },
    { id: "labels", label: "标注与模型 Models", roles: ["trainer"], render: renderLabels },
    { id: "operator", label: "运营 Operator", roles: ["staff", "qa", "trainer"], render: renderOperator },
    { id: "customers", label: "客户 Customers", roles: ["staff", "qa", "trainer"], render: renderCustomers },
    { id: "groups", label: "群运营 Groups", roles: ["qa", "trainer"], render: renderGroups },
    { id: "work-orders", label: "工单 Work orders", roles: ["staff", "qa", "trainer"], render: renderWorkOrders },
    { id: "admin", label: "管理 Admin", roles: [], render: renderAdmin },
    { id: "start", label: "开始 Start", roles: ["staff", "qa", "trainer"], render: renderStart },
  ];
  let me = null;

  function allowed(tab) { return me.role === "admin" || tab.roles.includes(me.role); }
  function errorBox(e) { return h("p", { class: "error", role: "alert" }, e.message || String(e)); }

  async function start() {
    me = await Copilot.session();
    if (!me) return showLogin();
    document.getElementById("login").classList.add("hidden");
    document.getElementById("who").textContent = `${me.name} · ${me.role} `;
    document.getElementById("who").append(h("button", { class: "secondary", id: "logout", onclick: async () => { await Copilot.logout(); location.reload(); } }, "退出"));
    const nav = clear(document.getElementById("nav"));
    const tabs = TABS.filter(allowed);
    for (const tab of tabs) nav.append(h("button", { id: `tab-${tab.id}`, onclick: () => go(tab.id) }, tab.label));
    const wanted = location.hash.slice(1);
    const first = TABS.find(t => t.id === wanted) || tabs[0];
    go(first.id);
  }

  function showLogin() {
    document.getElementById("login").classList.remove("hidden");
    document.getElementById("login-form").onsubmit = async (ev) => {
      ev.preventDefault();
      try { await Copilot.login(document.getElementById("token").value); location.reload(); }
      catch (e) { document.getElementById("login-error").textContent = e.message; }
    };
  }

  function go(id) {
    const tab = TABS.find(t => t.id === id);
    location.hash = id;
    for (const b of document.querySelectorAll("#nav button")) b.classList.toggle("active", b.id === `tab-${id}`);
    clear(view);
    if (!allowed(tab)) { view.append(h("section", {}, h("p", { class: "error", id: "forbidden" }, `角色 ${me.role} 无权访问此页面 (this page needs: ${tab.roles.join(", ") || "admin"})`))); return; }
    tab.render(view).catch(e => view.append(errorBox(e)));
  }

  // ---------------------------------------------------------------- First run
  const GUIDE = [
    ["qa", "质检 QA", "处理标记队列：违规、辱骂、引流、投诉；确认或驳回，驳回会成为模型的训练标签。"],
    ["trainer", "话术 Trainer", "维护话术库、导入 CSV/JSONL、审核挖掘出的爆款话术；标注队列和模型版本在「标注与模型」。"],
    ["labels", "标注与模型", "用键盘标注模型最没把握的消息，训练新版本，通过门禁后上线或回滚。"],
    ["operator", "运营 Operator", "开团接龙、实时名单、数据看板。"],
    ["customers", "客户 Customers", "客户画像与时间线、自动标签规则、人群、群发活动漏斗、渠道活码树。"],
    ["groups", "群运营 Groups", "客户群与群类型、群 SOP 日历的执行情况、门店与就近门店查询、裂变活动排行。"],
    ["work-orders", "工单 Work orders", "差评与投诉自动生成工单：负责人、SLA、超时升级、处理记录和团队指标。"],
    ["admin", "管理 Admin", "令牌、渠道欢迎语、敏感词库。"],
  ];

  async function renderStart(root) {
    const info = await api("GET", "/api/v1/demo").catch(() => ({ demo: false }));
    const mine = GUIDE.filter(([id]) => allowed(TABS.find(t => t.id === id)));
    root.append(h("section", { id: "start" }, h("h2", {}, `欢迎，${me.name}`),
      info.demo ? h("p", { class: "ok", id: "demo-banner" }, `示例品牌「鹿米生活」已载入：${info.summary.scripts} 条话术、${info.summary.conversations} 段会话、${info.summary.relays.length} 个接龙。`)
        : h("p", { class: "muted" }, "还没有数据：导入话术（话术页）、把企业微信回调指向 /wecom/callback、用 POST /api/v1/archive 导入会话存档，或用 python server.py --demo 载入示例品牌。"),
      h("ul", { id: "guide" }, ...mine.map(([id, label, what]) => h("li", {}, h("a", { href: `#${id}`, onclick: () => go(id) }, label), " — ", what))),
      info.tokens ? h("div", { id: "demo-tokens" }, h("h3", {}, "示例令牌（仅管理员可见）"),
        ...Object.entries(info.tokens).map(([role, t]) => h("div", { class: "row" }, h("strong", {}, role), h("code", {}, t)))) : null));
  }

  // ---------------------------------------------------------------- QA
  async function renderQA(root) {
    const filters = h("div", { class: "row" },
      sel("f-status", ["open", "confirmed", "dismissed", ""]), sel("f-severity", ["", "high", "medium", "low"]),
      h("input", { id: "f-reason", placeholder: "reason" }), h("button", { id: "f-apply", onclick: load }, "筛选"),
      h("span", { class: "muted" }, "快捷键: j/k 上下, c 确认, d 驳回"));
    const table = h("table", { id: "flags" });
    const detail = h("div", { id: "flag-detail", class: "muted" }, "选择一条标记");
    root.append(h("div", { class: "grid" }, h("section", {}, h("h2", {}, "标记队列"), filters, table), h("section", {}, h("h2", {}, "会话"), detail)));
    let flags = [], current = -1;
    async function load() {
      const q = new URLSearchParams();
      for (const [k, id] of [["status", "f-status"], ["severity", "f-severity"], ["reason", "f-reason"]]) {
        const v = document.getElementById(id).value; if (v) q.set(k, v);
      }
      flags = (await api("GET", `/api/v1/flags?${q}`)).items;
      clear(table, h("tr", {}, h("th", {}, "严重度"), h("th", {}, "原因"), h("th", {}, "会话"), h("th", {}, "状态")),
        ...flags.map((f, i) => h("tr", { class: "clickable", "data-id": f.id, onclick: () => select(i) },
          h("td", {}, badge(f.severity, f.severity)), h("td", {}, f.reason), h("td", {}, f.conversation_id), h("td", {}, f.status))));
      if (!flags.length) table.append(h("tr", {}, h("td", { colspan: 4, class: "muted", id: "qa-empty" },
        "没有符合条件的标记。标记来自分析过的会话：接入会话存档（POST /api/v1/archive，或配置 FinanceSDK 自动拉取）或企业微信回调后，违规、辱骂、引流、投诉和超时未回复会出现在这里。")));
      current = -1;
      if (flags.length) select(0);
    }
    async function select(i) {
      current = i;
      for (const [j, tr] of [...table.querySelectorAll("tr.clickable")].entries()) tr.classList.toggle("selected", j === i);
      const f = flags[i];
      const data = await api("GET", `/api/v1/conversations/${encodeURIComponent(f.conversation_id)}/messages?around=${encodeURIComponent(f.msgid || "")}&limit=12`);
      const note = h("input", { id: "review-note", placeholder: "备注 note", size: 30 });
      clear(detail,
        h("div", { class: "row" }, badge(f.severity, f.severity), h("strong", {}, f.reason), h("span", { class: "muted" }, f.detail)),
        ...data.items.map(m => h("div", { class: `msg ${m.role} ${m.msgid === f.msgid ? "focus" : ""}`, "data-msgid": m.msgid },
          h("div", { class: "meta" }, `${m.sender_id} (${m.role}) · ${fmtTime(m.msgtime)} `,
            m.analysis ? badge(m.analysis.intent.label) : null, m.analysis ? badge(m.analysis.sentiment.label, m.analysis.sentiment.label) : null,
            m.recalled ? badge("已撤回") : null),
          h("div", { class: "text" }, m.text ? highlighted(m.text, m.analysis ? m.analysis.sensitive : []) : `[${m.msgtype}]`))),
        h("div", { class: "row" }, note,
          h("button", { id: "confirm", onclick: () => review("confirmed") }, "确认 (c)"),
          h("button", { id: "dismiss", class: "secondary", onclick: () => review("dismissed") }, "驳回 (d)")),
        h("div", { id: "review-result" }));
    }
    async function review(verdict) {
      if (current < 0) return;
      const f = flags[current];
      try {
        const r = await api("POST", `/api/v1/flags/${f.id}/review`, { verdict, note: document.getElementById("review-note").value });
        flags[current] = r;
        table.querySelectorAll("tr.clickable")[current].lastChild.textContent = r.status;
        clear(document.getElementById("review-result"), h("span", { class: "ok" }, `已${verdict === "confirmed" ? "确认" : "驳回"}（${r.reviewed_by}）`));
        if (current + 1 < flags.length) setTimeout(() => select(current + 1), 300);
      } catch (e) { clear(document.getElementById("review-result"), errorBox(e)); }
    }
    document.onkeydown = (ev) => {
      if (["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement.tagName) || location.hash !== "#qa") return;
      if (ev.key === "j" && current + 1 < flags.length) select(current + 1);
      if (ev.key === "k" && current > 0) select(current - 1);
      if (ev.key === "c") review("confirmed");
      if (ev.key === "d") review("dismissed");
    };
    await load();
  }

  function sel(id, options) { return h("select", { id }, ...options.map(o => h("option", { value: o }, o || "(全部)"))); }

  // ---------------------------------------------------------------- Trainer
  async function renderTrainer(root) {
    const list = h("table", { id: "scripts" });
    const editor = h("div", { id: "editor" });
    const importResult = h("div", { id: "import-result" });
    const tryResult = h("div", { id: "try-result" });
    const models = h("div", { id: "models" });
    root.append(
      h("div", { class: "grid" },
        h("section", {}, h("h2", {}, "话术库"),
          h("div", { class: "row" }, h("input", { id: "s-q", placeholder: "搜索" }), h("input", { id: "s-tag", placeholder: "标签" }),
            sel("s-status", ["", "approved", "draft"]), h("button", { id: "s-search", onclick: load }, "搜索"),
            h("button", { id: "s-new", class: "secondary", onclick: () => edit(null) }, "新建")),
          list),
        h("div", {},
          h("section", {}, h("h2", {}, "编辑"), editor),
          h("section", {}, h("h2", {}, "导入 CSV / JSONL"),
            h("div", { class: "row" }, h("input", { id: "import-file", type: "file", accept: ".csv,.jsonl,.json,.txt" }),
              h("button", { id: "import", onclick: doImport }, "导入")), importResult),
          h("section", {}, h("h2", {}, "试一试"),
            h("div", { class: "row" }, h("input", { id: "try-text", placeholder: "客户消息", size: 30 }), h("button", { id: "try", onclick: doTry }, "推荐")), tryResult),
          h("section", {}, h("h2", {}, "模型与评估"), models))));
    async function load() {
      const q = new URLSearchParams({ limit: "100" });
      for (const [k, id] of [["q", "s-q"], ["tag", "s-tag"], ["status", "s-status"]]) { const v = document.getElementById(id).value; if (v) q.set(k, v); }
      const items = (await api("GET", `/api/v1/scripts?${q}`)).items;
      if (!items.length) {
        clear(list, h("tr", {}, h("td", { class: "muted", id: "scripts-empty" },
          q.toString() && q.toString() !== "limit=100" ? "没有符合条件的话术" : "话术库是空的：在上方导入 CSV/JSONL（question, reply, scenario, tags）或新建一条；从成交会话挖掘出的爆款话术会作为草稿出现在这里。")));
        return;
      }
      clear(list, h("tr", {}, h("th", {}, "问题"), h("th", {}, "回复"), h("th", {}, "状态"), h("th", {}, "采纳")),
        ...items.map(s => h("tr", { class: "clickable", "data-id": s.id, onclick: () => edit(s) },
          h("td", {}, s.question), h("td", {}, s.reply), h("td", {}, badge(s.status, s.status === "draft" ? "medium" : "")),
          h("td", {}, `${s.stats.adopted || 0}/${s.stats.shown || 0}`))));
    }
    function edit(s) {
      const f = { id: h("input", { id: "e-id", value: s ? s.id : "", placeholder: "id（留空自动生成）", readonly: !!s }),
        question: h("textarea", { id: "e-question" }, s ? s.question : ""), reply: h("textarea", { id: "e-reply" }, s ? s.reply : ""),
        tags: h("input", { id: "e-tags", value: s ? s.tags.join("|") : "", placeholder: "标签 a|b" }), status: sel("e-status", ["approved", "draft"]) };
      if (s) f.status.value = s.status;
      const msg = h("span", { id: "e-msg" });
      clear(editor, f.id, h("label", {}, "问题"), f.question, h("label", {}, "回复"), f.reply, h("div", { class: "row" }, f.tags, f.status,
        h("button", { id: "e-save", onclick: save }, s && s.status === "draft" ? "保存 / 批准" : "保存"),
        s ? h("button", { class: "danger", id: "e-delete", onclick: del }, "删除") : null, msg));
      async function save() {
        const body = { question: f.question.value, reply: f.reply.value, tags: f.tags.value.split("|").map(t => t.trim()).filter(Boolean), status: f.status.value };
        try {
          const saved = f.id.value ? await api("PUT", `/api/v1/scripts/${encodeURIComponent(f.id.value)}`, body) : await api("POST", "/api/v1/scripts", body);
          clear(msg, h("span", { class: "ok" }, `已保存 ${saved.id}`)); await load();
        } catch (e) { clear(msg, errorBox(e)); }
      }
      async function del() { await api("DELETE", `/api/v1/scripts/${encodeURIComponent(s.id)}`); clear(editor); await load(); }
    }
    async function doImport() {
      const file = document.getElementById("import-file").files[0];
      if (!file) return;
      const type = file.name.endsWith(".csv") ? "text/csv" : "application/x-ndjson";
      try {
        const r = await api("POST", "/api/v1/scripts/import", await file.text(), type);
        clear(importResult, h("p", { class: "ok" }, `导入 ${r.imported}，更新 ${r.updated}，错误 ${r.errors.length}`),
          h("ul", { id: "import-errors" }, ...r.errors.map(e => h("li", { class: "error" }, `第 ${e.line} 行：${e.message}`))));
        await load();
      } catch (e) { clear(importResult, errorBox(e)); }
    }
    async function doTry() {
      const r = await api("POST", "/api/v1/suggestions", { text: document.getElementById("try-text").value, k: 5 });
      clear(tryResult, h("div", { class: "muted" }, `意图 ${r.intent.label} (${r.intent.score.toFixed(2)})`),
        h("ol", { id: "try-list" }, ...r.suggestions.map(s => h("li", { "data-id": s.script_id }, h("strong", {}, s.score.toFixed(3)), ` ${s.question} → ${s.reply}`))));
    }
    const m = await api("GET", "/api/v1/models/evaluation");
    const ev = m.evaluation;
    clear(models, h("div", {}, `编码模型: ${m.embedding_model}`),
      ...["intent", "sentiment"].map(n => m[n] ? h("div", {}, `${n}: ${m[n].n_train} 条训练数据, τ=${m[n].tau}, 标签 ${m[n].labels.join(", ")}`) : h("div", {}, `${n}: —`)),
      ev ? confusion(ev.intent) : h("p", { class: "muted" }, "运行 python -m training evaluate 后显示最新评估与混淆矩阵"));
    await load();
  }

  function confusion(rep) {
    const labels = rep.labels;
    return h("div", {}, h("p", {}, `意图 held-out: accuracy ${rep.accuracy.toFixed(3)} · macro-F1 ${rep.macro_f1.toFixed(3)}`),
      h("table", { id: "confusion" }, h("tr", {}, h("th", {}, "gold\\pred"), ...labels.map(l => h("th", {}, l.slice(0, 6)))),
        ...labels.map(g => h("tr", {}, h("th", {}, g), ...labels.map(p => h("td", {}, rep.confusion[g][p]))))));
  }

  // ---------------------------------------------------------------- Labelling and the model registry
  const LABELS = {
    intent: ["greeting", "price_inquiry", "promotion", "product_info", "purchase_intent", "relay_signup", "shipping",
      "return_refund", "complaint", "membership", "store_visit", "other"],
    sentiment: ["positive", "neutral", "negative"],
    sensitive: ["clean", "abuse", "diversion", "ad_law", "privacy"],
  };
  const KEYS = "1234567890ab";  // one key per label, in the order above

  async function renderLabels(root) {
    const task = sel("l-task", ["intent", "sentiment", "sensitive"]);
    const card = h("div", { id: "label-card" });
    const legend = h("div", { id: "label-legend", class: "row" });
    const done = h("div", { id: "label-done", class: "muted" });
    const registry = h("div", { id: "registry" });
    root.append(h("div", { class: "grid" },
      h("section", {}, h("h2", {}, "标注队列 (模型最没把握的消息)"),
        h("div", { class: "row" }, task, h("button", { id: "l-load", onclick: () => load() }, "载入"),
          h("span", { class: "muted" }, "快捷键: 数字/字母 = 标签, s 跳过, z 或 Backspace 撤销")),
        legend, card, done),
      h("section", {}, h("h2", {}, "模型版本"), registry)));
    let items = [], pos = 0, history = [];
    task.onchange = () => load();
    async function load() {
      const t = task.value;
      clear(legend, ...LABELS[t].map((l, i) => h("span", { class: "badge key" }, `${KEYS[i]} ${l}`)));
      items = (await api("GET", `/api/v1/labels/queue?task=${t}&limit=50&context=1`)).items;
      pos = 0; history = [];
      show();
    }
    function show() {
      const it = items[pos];
      clear(done, `本轮已标 ${history.filter(x => x.label).length} 条`);
      if (!it) return clear(card, h("p", { class: "muted", id: "label-empty" }, "队列已空"));
      const around = (at) => (it.context || []).filter(c => c.at === at)
        .map(c => h("div", { class: `msg ${c.role}` }, h("span", { class: "muted" }, c.role + ": "), c.text));
      clear(card, h("div", { class: "muted" }, `${pos + 1} / ${items.length} · 模型猜 `, badge(it.guess.label), ` (${(it.score ?? 0).toFixed(2)})`),
        h("div", { class: "context" }, ...around("before")),
        h("div", { class: "msg focus", id: "label-text" }, it.text),
        h("div", { class: "context" }, ...around("after")));
    }
    async function label(name) {
      const it = items[pos];
      if (!it) return;
      await api("POST", "/api/v1/labels", { items: [{ task: task.value, text: it.text, label: name, msgid: it.msgid }] });
      history.push({ pos, label: name }); pos += 1; show();
    }
    function skip() { if (items[pos]) { history.push({ pos, label: null }); pos += 1; show(); } }
    function undo() {  // back one item; the next key press relabels it (the latest label wins)
      const last = history.pop();
      if (last) { pos = last.pos; show(); }
    }
    document.onkeydown = (ev) => {
      if (["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement.tagName) || location.hash !== "#labels") return;
      const i = KEYS.indexOf(ev.key);
      if (i >= 0 && i < LABELS[task.value].length) { ev.preventDefault(); label(LABELS[task.value][i]).catch(e => card.append(errorBox(e))); }
      else if (ev.key === "s") skip();
      else if (ev.key === "z" || ev.key === "Backspace") { ev.preventDefault(); undo(); }
    };

    async function loadRegistry() {
      const versions = (await api("GET", "/api/v1/models")).items;
      const msg = h("div", { id: "registry-msg" });
      clear(registry, msg, ...["intent", "sentiment", "sensitive"].map(t => {
        const rows = versions.filter(v => v.task === t);
        return h("div", { class: "task-versions", "data-task": t },
          h("h3", {}, t, " ", h("button", { class: "secondary", id: `train-${t}`, onclick: () => train(t, msg) }, "训练新版本")),
          h("table", {}, h("tr", {}, h("th", {}, "版本"), h("th", {}, "状态"), h("th", {}, "门禁指标"), h("th", {}, "对比"), h("th", {}, "标签"), h("th", {}, "")),
            ...rows.map(v => {
              const gate = (v.metrics || {}).gate || {}, base = ((v.metrics || {}).baseline || {}).gate || {};
              const fmt = (m) => Object.entries(m).filter(([k]) => k !== "n").map(([k, x]) => `${k} ${(+x).toFixed(3)}`).join(" · ");
              const action = v.status === "active" ? null : h("button", { class: v.status === "retired" ? "secondary" : "",
                "data-version": v.version, onclick: () => promote(v.version, msg) }, v.status === "retired" ? "回滚到此" : "上线");
              return h("tr", { "data-version": v.version }, h("td", {}, v.version), h("td", {}, badge(v.status, v.status)),
                h("td", {}, fmt(gate) || "—"), h("td", {}, fmt(base) ? `active: ${fmt(base)}` : "—"),
                h("td", {}, (v.data || {}).labels ?? "—"), h("td", {}, action));
            })));
      }));
    }
    async function train(t, msg) {
      try {
        const j = await api("POST", "/api/v1/models/train", { task: t });
        clear(msg, h("span", { class: "ok" }, `训练任务 ${j.job_id} 已排队`));
        const poll = setInterval(async () => {
          const s = await api("GET", `/api/v1/models/jobs/${j.job_id}`);
          clear(msg, h("span", { class: s.status === "failed" ? "error" : "ok" }, `训练任务 ${j.job_id}: ${s.status}${s.error ? " — " + s.error.split("\n")[0] : ""}`));
          if (s.status === "done" || s.status === "failed") { clearInterval(poll); await loadRegistry(); }
        }, 2000);
      } catch (e) { clear(msg, errorBox(e)); }
    }
    async function promote(version, msg) {
      try { await api("POST", `/api/v1/models/${encodeURIComponent(version)}/promote`, {}); await loadRegistry(); clear(document.getElementById("registry-msg"), h("span", { class: "ok" }, `${version} 已上线`)); }
      catch (e) { clear(msg, errorBox(e)); }
    }
    await Promise.all([load(), loadRegistry()]);
  }

  // ---------------------------------------------------------------- Customers, segments, campaigns, channels
  async function renderCustomers(root) {
    const list = h("table", { id: "customers" });
    const detail = h("div", { id: "customer-detail", class: "muted" }, "选择一位客户");
    const side = h("div", {});
    const filters = h("div", { class: "row" },
      h("input", { id: "c-tag", placeholder: "标签" }), h("input", { id: "c-dormant", type: "number", min: 1, placeholder: "沉睡天数", style: "width:90px" }),
      h("button", { id: "c-search", onclick: () => load() }, "查询"));
    root.append(h("div", { class: "grid" },
      h("section", {}, h("h2", {}, "客户"), filters, list), h("section", {}, h("h2", {}, "客户详情"), detail)), side);
    async function load() {
      const q = new URLSearchParams({ limit: "100" });
      const tag = document.getElementById("c-tag").value.trim(), dormant = document.getElementById("c-dormant").value;
      if (tag) q.set("tag", tag);
      if (dormant) q.set("dormant_days", dormant);
      try {
        const items = (await api("GET", `/api/v1/customers?${q}`)).items;
        if (!items.length) {
          clear(list, h("tr", {}, h("td", { class: "muted", id: "customers-empty" }, tag || dormant ? "没有符合条件的客户" :
            "还没有客户：客户添加员工（企业微信回调）、会话存档里的消息，或同步企业微信已有客户（POST /api/v1/customers/sync）都会建立客户画像。")));
          return;
        }
        clear(list, h("tr", {}, h("th", {}, "客户"), h("th", {}, "标签"), h("th", {}, "近30天意图"), h("th", {}, "最近消息")),
          ...items.map(c => h("tr", { class: "clickable", "data-id": c.id, onclick: () => show(c.id) },
            h("td", {}, c.name || c.id), h("td", {}, ...c.tags.map(t => badge(t))),
            h("td", {}, Object.entries(c.intents).sort((a, b) => b[1] - a[1]).slice(0, 3).map(([k, v]) => `${k}×${v}`).join(" ")),
            h("td", {}, c.last_message_at ? fmtTime(c.last_message_at) : "—"))));
      } catch (e) { clear(list, errorBox(e)); }
    }
    async function show(id) {
      const c = await api("GET", `/api/v1/customers/${encodeURIComponent(id)}`);
      clear(detail, h("div", {}, h("strong", {}, c.name || c.id), " ", badge(c.status), " 渠道 ", c.channel || "—", " · 跟进 ", c.staff.join(", ") || "—"),
        h("div", { class: "row" }, ...c.tags.map(t => badge(t))),
        h("ol", { id: "timeline" }, ...c.timeline.slice(0, 30).map(e => h("li", {}, h("span", { class: "muted" }, `${fmtTime(e.at)} ${e.kind} `),
          e.text || e.tag || e.relay_id || "", e.intent ? badge(e.intent) : null))));
    }
    await load();
    if (me.role === "staff") return;
    const segs = h("div", { id: "segments" }), camps = h("div", { id: "campaigns" }), tree = h("div", { id: "channel-tree" });
    const split = v => v.split(/[,，\s]+/).map(x => x.trim()).filter(Boolean);
    const segMsg = h("span", { id: "seg-msg" }), campMsg = h("span", { id: "camp-msg" });
    const segForm = h("form", { id: "segment-form", class: "row", onsubmit: async (ev) => {
      ev.preventDefault();
      const f = {}, all = split(document.getElementById("seg-tags").value), none = split(document.getElementById("seg-none").value);
      const dormant = document.getElementById("seg-dormant").value;
      if (all.length) f.tags_all = all;
      if (none.length) f.tags_none = none;
      if (dormant) f.dormant_days = Number(dormant);
      try {
        const r = await api("POST", "/api/v1/segments", { name: document.getElementById("seg-name").value, filter: f });
        clear(segMsg, h("span", { class: "ok" }, r.count !== undefined ? `已保存：${r.count} 人` : "已保存")); await loadSide();
      }
      catch (e) { clear(segMsg, errorBox(e)); }
    } }, h("input", { id: "seg-name", placeholder: "人群名称", required: true, size: 10 }), h("input", { id: "seg-tags", placeholder: "包含标签（逗号分隔）", size: 16 }),
      h("input", { id: "seg-none", placeholder: "排除标签", size: 10 }), h("input", { id: "seg-dormant", type: "number", min: 1, placeholder: "沉睡天数", style: "width:80px" }),
      h("button", { type: "submit" }, "保存人群"), segMsg);
    const campSegment = h("select", { id: "camp-segment", required: true });
    const campForm = h("form", { id: "campaign-form", class: "row", onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        await api("POST", "/api/v1/campaigns", { name: document.getElementById("camp-name").value, segment_id: campSegment.value,
          text: document.getElementById("camp-text").value });
        clear(campMsg, h("span", { class: "ok" }, "已创建：每位跟进员工会收到一条待确认的群发任务")); await loadSide();
      } catch (e) { clear(campMsg, errorBox(e)); }
    } }, h("input", { id: "camp-name", placeholder: "活动名称", required: true, size: 10 }), campSegment,
      h("input", { id: "camp-text", placeholder: "群发内容", required: true, size: 24 }), h("button", { type: "submit" }, "创建群发"), campMsg);
    const forms = me.role === "trainer" || me.role === "admin";
    side.append(h("div", { class: "grid" },
      h("section", {}, h("h2", {}, "人群"), forms ? segForm : null, segs, h("h2", {}, "群发活动"), forms ? campForm : null, camps),
      h("section", {}, h("h2", {}, "渠道活码 (近30天)"), tree)));
    const rules = tagRulesSection(forms, (tag) => { document.getElementById("c-tag").value = tag; return load(); });
    side.append(rules.el);
    async function loadSide() { await loadSideFor(segs, camps, tree); }
    await Promise.all([loadSide(), rules.load()]);
  }

  async function loadSideFor(segs, camps, tree) {
    const [s, cs, t] = await Promise.all([api("GET", "/api/v1/segments"), api("GET", "/api/v1/campaigns"),
      api("GET", "/api/v1/channels/tree?days=30")]);
    const sel = document.getElementById("camp-segment");
    if (sel) clear(sel, ...s.items.map(x => h("option", { value: x.id }, x.name)));
    clear(segs, ...(s.items.length ? s.items.map(x => h("div", { class: "row", "data-id": x.id }, h("span", {}, x.name), x.count !== undefined ? h("strong", {}, `${x.count} 人`) : null, h("span", { class: "muted" }, JSON.stringify(x.filter)))) : [h("p", { class: "muted" }, "还没有人群：POST /api/v1/segments 按标签、沉睡天数、渠道保存一个筛选（docs/CUSTOMERS.md）。")]));
    clear(camps, ...(cs.items.length ? [h("table", {}, h("tr", {}, ...["活动", "目标", "已建任务", "员工已发", "送达", "48h回复", "7天转化"].map(x => h("th", {}, x))),
      ...cs.items.map(c => h("tr", { "data-id": c.id }, h("td", {}, c.name), ...["targeted", "task_created", "sent_by_staff", "delivered", "replied_48h", "converted_7d"].map(k => h("td", {}, c.funnel[k])))))]
      : [h("p", { class: "muted" }, "还没有群发活动：POST /api/v1/campaigns 向一个人群群发，漏斗会在这里更新。")]));
    const node = (n) => h("li", { "data-state": n.state }, h("strong", {}, n.name), ` 新增 ${n.total.adds} · 7天流失 ${n.total.losses_7d} · 活跃 ${(n.total.active_rate * 100).toFixed(0)}% · 转化 ${n.total.conversions}`,
      n.own.adds !== n.total.adds ? h("span", { class: "muted" }, `（本级 ${n.own.adds}）`) : null,
      n.children.length ? h("ul", {}, ...n.children.map(node)) : null);
    clear(tree, t.items.length ? h("ul", {}, ...t.items.map(node)) : h("p", { class: "muted" }, "还没有渠道活码：在管理页或 POST /api/v1/channels 创建渠道（可设上级渠道）。"));
  }

  // ---------------------------------------------------------------- Tag rules (automatic tags)
  // One `when` form per rule (bot/customers/tag_rules.py); the form shows the fields its kind takes.
  const RULE_KINDS = [["intent", "意图"], ["sentiment", "情绪"], ["dormant_days", "沉睡"], ["relays_min", "接龙"]];
  function ruleKind(w) { return RULE_KINDS.map(([k]) => k).find(k => w[k] !== undefined && w[k] !== null); }
  function ruleWords(w) {
    switch (ruleKind(w)) {
      case "intent": return `近 ${w.days} 天内意图 ${w.intent} 出现至少 ${w.min_count} 次`;
      case "sentiment": return `近 ${w.days} 天内情绪 ${w.sentiment} 出现至少 ${w.min_count} 次`;
      case "dormant_days": return `仍在跟进、${w.dormant_days} 天没有发过消息`;
      case "relays_min": return `近 ${w.days} 天参加至少 ${w.relays_min} 个不同的接龙`;
      default: return JSON.stringify(w);
    }
  }
  // The API names a bad field by its path ("when.days: …"); mark the input that holds it.
  const RULE_FIELDS = { name: "tr-name", tag: "tr-tag", "when.intent": "tr-label", "when.sentiment": "tr-label",
    "when.min_count": "tr-count", "when.relays_min": "tr-count", "when.days": "tr-days", "when.dormant_days": "tr-days" };

  function tagRulesSection(canWrite, showTag) {
    const table = h("table", { id: "tag-rules" });
    const msg = h("div", { id: "tr-msg" });
    const field = (id, attrs) => h("input", { id, ...attrs });
    const kind = h("select", { id: "tr-kind", onchange: () => shape() }, ...RULE_KINDS.map(([k, l]) => h("option", { value: k }, l)));
    const label = h("select", { id: "tr-label" });
    const count = field("tr-count", { type: "number", min: 1, step: 1 });
    const days = field("tr-days", { type: "number", min: 1, step: 1 });
    const countLabel = h("span", {}), daysLabel = h("span", {});
    const remove = field("tr-remove", { type: "checkbox", checked: true });
    const enabled = field("tr-enabled", { type: "checkbox", checked: true });
    const save = h("button", { type: "submit", id: "tr-save" }, "保存规则");
    const cancel = h("button", { type: "button", id: "tr-cancel", class: "secondary hidden", onclick: () => reset() }, "取消修改");
    let editing = null;  // the id of the rule in the form, or null for a new one

    function shape() {
      const k = kind.value, windowed = k === "intent" || k === "sentiment";
      if (windowed) {
        const keep = label.value;
        clear(label, ...LABELS[k].map(l => h("option", { value: l }, l)));
        if (LABELS[k].includes(keep)) label.value = keep;
      }
      label.classList.toggle("hidden", !windowed);
      const counted = windowed || k === "relays_min";
      count.classList.toggle("hidden", !counted); countLabel.classList.toggle("hidden", !counted);
      count.required = counted;
      days.required = true;
      countLabel.textContent = k === "relays_min" ? "至少接龙数" : "至少次数";
      daysLabel.textContent = k === "dormant_days" ? "沉睡天数" : "最近天数";
    }
    function unmark() { for (const id of new Set(Object.values(RULE_FIELDS))) document.getElementById(id)?.removeAttribute("aria-invalid"); }
    function reset() {
      editing = null; form.reset(); kind.value = "intent"; shape(); unmark();
      save.textContent = "保存规则"; cancel.classList.add("hidden");
      for (const tr of table.querySelectorAll("tr.selected")) tr.classList.remove("selected");
    }
    function body() {
      const k = kind.value, w = {};
      if (k === "intent" || k === "sentiment") { w[k] = label.value; w.min_count = Number(count.value); w.days = Number(days.value); }
      else if (k === "dormant_days") w.dormant_days = Number(days.value);
      else { w.relays_min = Number(count.value); w.days = Number(days.value); }
      return { name: document.getElementById("tr-name").value, tag: document.getElementById("tr-tag").value, when: w,
        remove_when_false: remove.checked, enabled: enabled.checked };
    }
    function edit(r) {
      reset(); editing = r.id;
      document.getElementById("tr-name").value = r.name; document.getElementById("tr-tag").value = r.tag;
      kind.value = ruleKind(r.when); shape();
      if (r.when.intent || r.when.sentiment) label.value = r.when.intent || r.when.sentiment;
      count.value = r.when.min_count ?? r.when.relays_min ?? "";
      days.value = r.when.days ?? r.when.dormant_days ?? "";
      remove.checked = r.remove_when_false; enabled.checked = r.enabled;
      save.textContent = "保存修改"; cancel.classList.remove("hidden");
      table.querySelector(`tr[data-id="${r.id}"]`)?.classList.add("selected");
      clear(msg, h("span", { class: "muted" }, `正在修改「${r.name}」`));
    }
    const form = h("form", { id: "tag-rule-form", onsubmit: async (ev) => {
      ev.preventDefault(); unmark();
      const was = editing;
      try {
        const r = was ? await api("PUT", `/api/v1/tag-rules/${encodeURIComponent(was)}`, body())
          : await api("POST", "/api/v1/tag-rules", body());
        reset();
        clear(msg, h("span", { class: "ok" }, `${was ? "已修改" : "已创建"}「${r.name}」：下次评估（收到新消息时，或每 10 分钟）起生效`));
        await load();
      } catch (e) {
        for (const [path, id] of Object.entries(RULE_FIELDS)) {
          if (new RegExp(`(^|[:;] )${path.replace(".", "\\.")}:`).test(e.message)) document.getElementById(id).setAttribute("aria-invalid", "true");
        }
        clear(msg, errorBox(e));
      }
    } },
      h("div", { class: "row" }, field("tr-name", { placeholder: "规则名称", required: true, maxlength: 100, size: 12 }),
        field("tr-tag", { placeholder: "打上的标签", required: true, maxlength: 30, size: 10 }),
        h("label", {}, "条件 ", kind), label, countLabel, count, daysLabel, days),
      h("div", { class: "row" }, h("label", {}, remove, " 条件不再满足时移除标签"), h("label", {}, enabled, " 启用"),
        save, cancel, h("button", { type: "button", id: "tr-run", class: "secondary", onclick: run }, "立即评估全部规则")), msg);
    async function run() {
      try { const r = await api("POST", "/api/v1/tag-rules/run", {}); clear(msg, h("span", { class: "ok" }, `评估完成：新增 ${r.added} 个标签，移除 ${r.removed} 个`)); }
      catch (e) { clear(msg, errorBox(e)); }
    }
    function confirmDelete(r, cell) {
      clear(cell, h("span", { class: "error" }, `删除「${r.name}」？已打上的标签会保留。`),
        h("button", { class: "danger confirm-delete", onclick: async () => {
          try {
            await api("DELETE", `/api/v1/tag-rules/${encodeURIComponent(r.id)}`);
            if (editing === r.id) reset();
            clear(msg, h("span", { class: "ok" }, `已删除「${r.name}」`)); await load();
          } catch (e) { clear(msg, errorBox(e)); }
        } }, "确认删除"),
        h("button", { class: "secondary cancel-delete", onclick: () => load() }, "取消"));
    }
    async function load() {
      let items;
      try { items = (await api("GET", "/api/v1/tag-rules")).items; } catch (e) { return clear(table, h("tr", {}, h("td", {}, errorBox(e)))); }
      if (!items.length) {
        return clear(table, h("tr", {}, h("td", { class: "muted", id: "tag-rules-empty" }, canWrite
          ? "还没有自动标签规则：用上面的表单按意图、情绪、沉睡天数或接龙次数给客户自动打标签（同步到企业微信「WeCom Copilot」标签组）。"
          : "还没有自动标签规则：培训师或管理员可以在这里创建（docs/CUSTOMERS.md）。")));
      }
      clear(table, h("tr", {}, ...["规则", "标签", "条件", "不再满足时", "状态", ""].map(x => h("th", {}, x))),
        ...items.map(r => {
          const actions = h("td", { class: "actions" },
            h("button", { class: "secondary show-customers", title: "在上面的客户列表里按这个标签筛选", onclick: () => showTag(r.tag) }, "查看客户"),
            canWrite ? h("button", { class: "secondary edit", onclick: () => edit(r) }, "编辑") : null,
            canWrite ? h("button", { class: "danger delete", onclick: () => confirmDelete(r, actions) }, "删除") : null);
          return h("tr", { "data-id": r.id, class: r.id === editing ? "selected" : "" }, h("td", {}, r.name), h("td", {}, badge(r.tag)),
            h("td", { class: "when" }, ruleWords(r.when)), h("td", {}, r.remove_when_false ? "移除标签" : "保留标签"),
            h("td", {}, r.enabled ? badge("启用", "positive") : badge("停用")), actions);
        }));
    }
    shape();
    const el = h("section", { id: "tag-rules-section" }, h("h2", {}, "自动标签规则"),
      canWrite ? form : h("p", { class: "muted", id: "tag-rules-readonly" }, "只读：培训师和管理员可以新建、修改和删除规则。"),
      h("p", { class: "muted" }, "打上的标签会推送到企业微信（「WeCom Copilot」标签组）；删除规则不会移除已打上的标签。"), table);
    return { el, load };
  }

  // ---------------------------------------------------------------- Groups
  async function renderGroups(root) {
    const groups = h("div", { id: "groups" }), plans = h("div", { id: "sop-plans" }), runs = h("div", { id: "sop-runs" });
    const stores = h("div", { id: "stores" }), nearest = h("ol", { id: "nearest" }), fission = h("div", { id: "fission" });
    const lat = h("input", { id: "n-lat", type: "number", step: "any", placeholder: "纬度 lat", style: "width:110px" });
    const lng = h("input", { id: "n-lng", type: "number", step: "any", placeholder: "经度 lng", style: "width:110px" });
    root.append(h("div", { class: "grid" },
      h("section", {}, h("h2", {}, "客户群"), groups),
      h("section", {}, h("h2", {}, "群 SOP"), plans, runs)),
      h("div", { class: "grid" },
        h("section", {}, h("h2", {}, "门店"), stores, h("div", { class: "row" }, lat, lng,
          h("button", { id: "n-search", onclick: () => findNearest() }, "就近门店")), nearest),
        h("section", {}, h("h2", {}, "裂变活动"), fission)));
    const [g, ps, st, fs] = await Promise.all([api("GET", "/api/v1/groups"), api("GET", "/api/v1/sop/plans"),
      api("GET", "/api/v1/stores"), api("GET", "/api/v1/fission")]);
    clear(groups, g.items.length ? h("table", {}, h("tr", {}, ...["群", "群主", "人数", "进/退", "类型"].map(x => h("th", {}, x))),
      ...g.items.map(x => h("tr", { "data-chat": x.chat_id }, h("td", {}, x.name || x.chat_id), h("td", {}, x.owner || "—"),
        h("td", {}, x.member_count ?? "—"), h("td", {}, `${x.joins}/${x.leaves}`),
        h("td", {}, h("input", { class: "group-type", value: x.type || "", placeholder: "如 vip", size: 8, onchange: async (ev) => {
          const v = ev.target.value.trim();
          try { await api("PUT", `/api/v1/groups/${encodeURIComponent(x.chat_id)}/type`, { type: v || null }); ev.target.classList.remove("error"); }
          catch (e) { ev.target.classList.add("error"); ev.target.title = e.message; }
        } })))))
      : h("p", { class: "muted" }, "还没有客户群：群创建、改名或有人进退群时（change_external_chat 回调）会出现在这里；也可在「客户」同步 WeCom 已有的群（POST /api/v1/customers/sync）。"));
    const showRuns = async (plan) => {
      const r = await api("GET", `/api/v1/sop/plans/${plan.id}/runs`);
      clear(runs, h("h3", {}, plan.name), r.items.length ? h("table", {}, h("tr", {}, ...["群", "内容", "应发", "状态"].map(x => h("th", {}, x))),
        ...r.items.slice(0, 50).map(x => h("tr", {}, h("td", {}, x.chat_id), h("td", {}, (plan.posts[x.post] || {}).kind || `#${x.post}`), h("td", {}, fmtTime(x.due_at)), h("td", {}, badge(x.status, x.status === "missed" ? "high" : "")))))
        : h("p", { class: "muted" }, "还没有执行记录"));
    };
    clear(plans, ps.items.length ? h("ul", {}, ...ps.items.map(x => h("li", { class: "clickable", "data-id": x.id, onclick: () => showRuns(x) },
      h("strong", {}, x.name), ` · ${x.group_type} · 发帖 ${x.posts.length} · 已发 ${x.runs.sent || 0} · 漏发 ${x.runs.missed || 0}`)))
      : h("p", { class: "muted" }, "还没有 SOP 计划：POST /api/v1/sop/plans 按群类型设置每周发什么（docs/GROUPS.md）。"));
    clear(stores, h("p", { class: "muted" }, st.items.length ? `${st.items.length} 家门店` : "还没有门店：POST /api/v1/stores 导入门店坐标。"));
    async function findNearest() {
      try {
        const r = await api("GET", `/api/v1/stores/nearest?lat=${encodeURIComponent(lat.value)}&lng=${encodeURIComponent(lng.value)}&k=3`);
        clear(nearest, ...r.items.map(x => h("li", {}, `${x.name} · ${(x.distance_m / 1000).toFixed(1)} km`)));
      } catch (e) { clear(nearest, errorBox(e)); }
    }
    if (!fs.items.length) { clear(fission, h("p", { class: "muted" }, "还没有裂变活动：POST /api/v1/fission（docs/GROWTH.md）。")); return; }
    const boards = await Promise.all(fs.items.slice(0, 5).map(c => api("GET", `/api/v1/fission/${c.id}/leaderboard`)));
    clear(fission, ...fs.items.slice(0, 5).map((c, i) => h("div", { "data-id": c.id }, h("strong", {}, c.name), " ",
      h("span", { class: "muted" }, JSON.stringify(c.funnel)),
      h("ol", {}, ...boards[i].items.slice(0, 10).map(b => h("li", {}, `${b.participant_id} · 有效邀请 ${b.counted}` + (b.pending ? ` · 待确认 ${b.pending}` : "")))))));
  }

  // ---------------------------------------------------------------- Work orders
  const NEXT = { open: ["in_progress", "resolved", "closed"], in_progress: ["resolved", "closed"], resolved: ["closed"], closed: [] };
  const STATUS_CN = { open: "待处理", in_progress: "处理中", resolved: "已解决", closed: "已关闭" };
  const ACTION_CN = { in_progress: "开始处理", resolved: "标记解决", closed: "关闭" };
  async function renderWorkOrders(root) {
    const list = h("table", { id: "work-orders" });
    const detail = h("div", { id: "work-order-detail", class: "muted" }, "选择一个工单");
    const figures = h("div", { id: "work-order-figures" });
    const topics = h("div", { id: "negative-topics" });
    const status = h("select", { id: "wo-status", onchange: () => load() }, h("option", { value: "" }, "全部状态"),
      ...Object.entries(STATUS_CN).map(([v, t]) => h("option", { value: v }, t)));
    root.append(h("div", { class: "grid" },
      h("section", {}, h("h2", {}, "工单"), h("div", { class: "row" }, status), list),
      h("section", {}, h("h2", {}, "工单详情"), detail)),
      h("section", {}, h("h2", {}, "团队指标（近30天）"), figures),
      me.role === "staff" ? null : h("section", {}, h("h2", {}, "差评话题（近4周）"), topics));
    async function load() {
      const q = new URLSearchParams({ limit: "100" });
      if (status.value) q.set("status", status.value);
      try {
        const items = (await api("GET", `/api/v1/work-orders?${q}`)).items;
        if (!items.length) {
          clear(list, h("tr", {}, h("td", { class: "muted" }, "还没有工单。客户投诉或连续差评时会自动生成；质检也可以通过 POST /api/v1/work-orders 手动创建。")));
          return;
        }
        const now = Date.now();
        clear(list, h("tr", {}, ...["客户", "原因", "级别", "状态", "负责人", "截止"].map(x => h("th", {}, x))),
          ...items.map(o => h("tr", { class: "clickable", "data-id": o.id, onclick: () => show(o.id) },
            h("td", {}, o.customer_id), h("td", {}, o.cause), h("td", {}, badge(o.severity, o.severity)),
            h("td", {}, STATUS_CN[o.status] || o.status), h("td", {}, o.owner + (o.escalated_to ? ` → ${o.escalated_to}` : "")),
            h("td", { class: !o.resolved_at && o.due_at < now ? "error" : "" }, fmtTime(o.due_at)))));
      } catch (e) { clear(list, errorBox(e)); }
    }
    async function show(id) {
      const o = await api("GET", `/api/v1/work-orders/${encodeURIComponent(id)}`);
      const note = h("input", { id: "wo-note", placeholder: "处理说明", size: 30 });
      const msg = h("span", { id: "wo-msg" });
      const buttons = (NEXT[o.status] || []).map(to => h("button", { "data-to": to, onclick: async () => {
        try { await api("POST", `/api/v1/work-orders/${encodeURIComponent(id)}/transition`, { to, note: note.value }); await load(); await show(id); await loadFigures(); }
        catch (e) { msg.textContent = e.message; }
      } }, ACTION_CN[to]));
      clear(detail, h("div", {}, h("strong", {}, o.customer_id), " ", badge(STATUS_CN[o.status] || o.status), " ", o.cause, " · 负责人 ", o.owner,
        " · 员工 ", o.staff_id || "—"),
        buttons.length ? h("div", { class: "row" }, note, ...buttons, msg) : null,
        h("ol", { id: "wo-events" }, ...o.events.map(e => h("li", {}, h("span", { class: "muted" }, `${fmtTime(e.at)} ${e.kind} `), e.by, " ",
          e.detail && e.detail.to ? `${STATUS_CN[e.detail.from] || e.detail.from || ""} → ${STATUS_CN[e.detail.to] || e.detail.to} ` : "",
          e.detail && e.detail.note ? `「${e.detail.note}」` : ""))),
        o.outcome ? h("p", { id: "wo-outcome" }, `解决后7天：客户消息 ${o.outcome.messages} 条，情绪 ${JSON.stringify(o.outcome.sentiment)}`) : null,
        o.survey ? h("p", { id: "wo-survey" }, o.survey.rating ? `满意度 ${o.survey.rating}/5 ${o.survey.comment || ""}` : "满意度调查（转发给客户）：",
          o.survey.rating ? null : h("code", {}, o.survey.url)) : null);
    }
    async function loadFigures() {
      const f = await api("GET", "/api/v1/work-orders/figures?days=30");
      const hours = v => v === null || v === undefined ? "—" : `${v} h`;
      const pct = v => v === null || v === undefined ? "—" : `${Math.round(v * 100)}%`;
      clear(figures, f.owners.length ? h("table", {}, h("tr", {}, ...["负责人", "新建", "已解决", "SLA内解决", "升级", "首次响应(中位)", "解决用时(中位)", "7天复诉", "满意度"].map(x => h("th", {}, x))),
        ...f.owners.map(r => h("tr", { "data-owner": r.owner }, h("td", {}, r.owner), h("td", {}, r.opened), h("td", {}, r.resolved), h("td", {}, pct(r.within_sla_rate)),
          h("td", {}, r.escalated), h("td", {}, hours(r.median_first_response_hours)), h("td", {}, hours(r.median_resolve_hours)), h("td", {}, pct(r.recontact_rate)),
          h("td", {}, r.csat === null || r.csat === undefined ? "—" : `${r.csat} (${r.surveys_answered})`))))
        : h("p", { class: "muted" }, "近30天没有工单"));
    }
    async function loadTopics() {
      const r = await api("GET", "/api/v1/analytics/negative-topics?days=28");
      if (!r.items.length) { clear(topics, h("p", { class: "muted" }, "近4周没有差评消息（每5分钟为新的差评归类一次）")); return; }
      const weeks = [...new Set(r.items.flatMap(i => Object.keys(i.weeks)))].sort();
      clear(topics, h("p", { class: "muted" }, `共 ${r.total} 条差评，${Math.round((r.named_share || 0) * 100)}% 归入具名话题`),
        h("table", {}, h("tr", {}, h("th", {}, "话题"), h("th", {}, "条数"), ...weeks.map(w => h("th", {}, w)), h("th", {}, "例子")),
          ...r.items.map(i => h("tr", { "data-topic": i.topic || "other" }, h("td", {}, i.name), h("td", {}, i.count),
            ...weeks.map(w => h("td", {}, i.weeks[w] || "")), h("td", { class: "muted" }, i.examples.map(e => e.text).join(" ｜ "))))));
    }
    await load();
    await loadFigures();
    if (me.role !== "staff") await loadTopics();
  }

  // ---------------------------------------------------------------- Operator
  async function renderOperator(root) {
    const relays = h("table", { id: "relays" });
    const live = h("div", { id: "relay-live", class: "muted" }, "选择一个接龙");
    const charts = h("div", { id: "charts" });
    const channels = h("div", { id: "channels" });
    const form = h("form", { id: "relay-form", class: "row" },
      h("input", { id: "r-chat", placeholder: "群ID", required: true }), h("input", { id: "r-title", placeholder: "商品", required: true }),
      h("input", { id: "r-stock", type: "number", min: 1, value: 50, style: "width:80px" }), h("input", { id: "r-limit", type: "number", min: 1, value: 2, style: "width:60px" }),
      h("button", { id: "r-create", type: "submit" }, "开团"), h("span", { id: "r-msg" }));
    root.append(h("div", { class: "grid" },
      h("section", {}, h("h2", {}, "接龙"), form, relays),
      h("section", {}, h("h2", {}, "实时名单"), live)),
      h("section", {}, h("h2", {}, "数据"), charts),
      me.role === "admin" ? h("section", {}, h("h2", {}, "渠道欢迎语"), channels) : null);
    let timer = null;
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      try {
        const r = await api("POST", "/api/v1/relays", { chat_id: document.getElementById("r-chat").value, title: document.getElementById("r-title").value,
          stock: +document.getElementById("r-stock").value, per_user_limit: +document.getElementById("r-limit").value });
        clear(document.getElementById("r-msg"), h("span", { class: "ok" }, `已开团 ${r.id}`)); await loadRelays(); show(r.id);
      } catch (e) { clear(document.getElementById("r-msg"), errorBox(e)); }
    };
    async function loadRelays() {
      const items = (await api("GET", "/api/v1/relays?limit=50")).items;
      if (!items.length) {
        clear(relays, h("tr", {}, h("td", { class: "muted", id: "relays-empty" }, "还没有接龙：用上面的表单开团（群ID、商品、库存、每人限购），或让员工在群里发「开团 商品 数量 每人限N」。群成员的 +1、接龙、#接龙 名单都会被计入。")));
        return;
      }
      clear(relays, h("tr", {}, h("th", {}, "商品"), h("th", {}, "群"), h("th", {}, "库存"), h("th", {}, "")),
        ...items.map(r => h("tr", { class: "clickable", "data-id": r.id, onclick: () => show(r.id) }, h("td", {}, r.title), h("td", {}, r.chat_id),
          h("td", {}, r.stock), h("td", {}, r.closed_at ? "已结束" : "进行中"))));
    }
    async function show(id) {
      clearInterval(timer);
      const render = async () => {
        if (!document.body.contains(live)) return clearInterval(timer);
        const s = await api("GET", `/api/v1/relays/${id}`);
        clear(live, h("div", { class: "row" }, badge(s.status), h("span", { id: "relay-remaining" }, `剩余 ${s.remaining}/${s.stock}`),
            h("a", { href: `/api/v1/relays/${id}/export.csv`, download: "" }, "导出 CSV"),
            s.status !== "closed" ? h("button", { class: "danger", id: "relay-close", onclick: async () => { await api("POST", `/api/v1/relays/${id}/close`); render(); } }, "结束") : null),
          h("pre", { class: "list", id: "relay-list" }, s.list_text));
      };
      await render();
      timer = setInterval(render, 2000);
    }
    async function loadCharts() {
      const [daily, groups, dormant] = await Promise.all([api("GET", "/api/v1/analytics/daily?days=14"),
        api("GET", "/api/v1/analytics/groups"), api("GET", "/api/v1/analytics/dormant?days=14&limit=20")]);
      if (!daily.items.some(d => (d.positive || 0) + (d.neutral || 0) + (d.negative || 0) + (d.flags || 0) > 0)) {
        clear(charts, h("p", { class: "muted", id: "charts-empty" }, "最近14天还没有分析过的消息：接入企业微信回调或会话存档后，每日消息、情绪、标记、群活跃和沉默客户会显示在这里。"));
        return;
      }
      clear(charts, h("div", { class: "grid" },
        h("div", {}, h("h3", {}, "每日消息与情绪"), barChart(daily.items, ["positive", "neutral", "negative"], ["#52c41a", "#8c8c8c", "#f54a45"]),
          h("h3", {}, "每日标记"), barChart(daily.items, ["flags"], ["#fa8c16"])),
        h("div", {}, h("h3", {}, "群活跃对比"), h("table", { id: "groups" }, h("tr", {}, h("th", {}, "群"), h("th", {}, "消息"), h("th", {}, "活跃"), h("th", {}, "接龙份数")),
          ...groups.items.map(g => h("tr", {}, h("td", {}, g.roomid), h("td", {}, g.messages), h("td", {}, g.active_members), h("td", {}, g.relay_units_confirmed)))),
          h("h3", {}, "沉默 / 未回复客户"), h("ul", {}, ...dormant.items.map(d => h("li", {}, `${d.customer_id} · ${d.reason} · ${d.silent_days} 天`))))));
    }
    async function loadChannels() {
      if (me.role !== "admin") return;
      const items = (await api("GET", "/api/v1/channels")).items;
      const st = h("input", { id: "c-state", placeholder: "state" }), nm = h("input", { id: "c-name", placeholder: "名称" });
      const wt = h("input", { id: "c-text", placeholder: "欢迎语", size: 30 }), tg = h("input", { id: "c-tags", placeholder: "标签ID a|b" });
      clear(channels, h("table", {}, ...items.map(c => h("tr", {}, h("td", {}, c.state), h("td", {}, c.name), h("td", {}, c.welcome_text), h("td", {}, c.tag_ids.join("|"))))),
        h("div", { class: "row" }, st, nm, wt, tg, h("button", { onclick: async () => {
          await api("POST", "/api/v1/channels", { state: st.value, name: nm.value, welcome_text: wt.value, tag_ids: tg.value.split("|").filter(Boolean) });
          loadChannels(); } }, "保存")));
    }
    await Promise.all([loadRelays(), loadCharts(), loadChannels()]);
  }

  // Stacked bars as inline SVG (no chart library, nothing from a CDN).
  function barChart(items, keys, colors) {
    const NS = "http://www.w3.org/2000/svg", W = 420, H = 140, pad = 20;
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`); svg.setAttribute("width", W); svg.setAttribute("height", H); svg.setAttribute("class", "chart");
    const max = Math.max(1, ...items.map(d => keys.reduce((s, k) => s + (d[k] || 0), 0)));
    const bw = items.length ? (W - pad) / items.length : W;
    items.forEach((d, i) => {
      let y = H - pad;
      keys.forEach((k, j) => {
        const hgt = ((d[k] || 0) / max) * (H - 2 * pad);
        const r = document.createElementNS(NS, "rect");
        r.setAttribute("x", pad + i * bw + 2); r.setAttribute("y", y - hgt); r.setAttribute("width", Math.max(2, bw - 4));
        r.setAttribute("height", hgt); r.setAttribute("fill", colors[j]);
        const t = document.createElementNS(NS, "title"); t.textContent = `${d.date} ${k}: ${d[k] || 0}`; r.append(t);
        svg.append(r); y -= hgt;
      });
      const lbl = document.createElementNS(NS, "text");
      lbl.setAttribute("x", pad + i * bw + 2); lbl.setAttribute("y", H - 6); lbl.setAttribute("font-size", "9"); lbl.textContent = d.date.slice(5);
      svg.append(lbl);
    });
    return svg;
  }

  // ---------------------------------------------------------------- Admin
  async function renderAdmin(root) {
    const tokens = h("table", { id: "tokens" }), lex = h("div", { id: "lexicons" }), out = h("div", { id: "token-out" });
    const name = h("input", { id: "t-name", placeholder: "名称" }), role = sel("t-role", ["staff", "qa", "trainer", "admin"]);
    root.append(h("section", {}, h("h2", {}, "令牌与角色"), h("div", { class: "row" }, name, role,
      h("button", { id: "t-create", onclick: async () => {
        const r = await api("POST", "/api/v1/tokens", { name: name.value || role.value, role: role.value });
        clear(out, h("p", {}, "新令牌（只显示一次）：", h("code", { id: "new-token" }, r.token))); load(); } }, "创建")), out, tokens),
      h("section", {}, h("h2", {}, "敏感词库"), lex));
    async function load() {
      const items = (await api("GET", "/api/v1/tokens")).items;
      clear(tokens, ...items.map(t => h("tr", {}, h("td", {}, t.name), h("td", {}, t.role), h("td", {}, t.revoked ? "已吊销" : ""),
        h("td", {}, t.revoked ? "" : h("button", { class: "secondary", onclick: async () => { await api("DELETE", `/api/v1/tokens/${t.id}`); load(); } }, "吊销")))));
      const l = await api("GET", "/api/v1/lexicons");
      const cat = h("input", { id: "l-cat", placeholder: "类别 e.g. diversion" }), term = h("input", { id: "l-term", placeholder: "词" });
      const sev = sel("l-sev", ["high", "medium", "low"]), roles = sel("l-roles", ["any", "staff", "customer"]);
      const msg = h("span", { id: "l-msg" });
      clear(lex, h("p", {}, Object.entries(l.categories).map(([c, n]) => `${c}: ${n}`).join(" · ")),
        h("div", { class: "row" }, cat, term, sev, roles, h("button", { id: "l-add", onclick: async () => {
          try { await api("POST", `/api/v1/lexicons/${encodeURIComponent(cat.value)}`, { terms: [{ term: term.value, severity: sev.value, roles: roles.value }] });
            clear(msg, h("span", { class: "ok" }, "已添加，立即生效")); } catch (e) { clear(msg, errorBox(e)); } } }, "添加"), msg),
        h("ul", {}, ...Object.entries(l.operator_terms).flatMap(([c, ts]) => ts.map(t => h("li", {}, `${c}: ${t.term} (${t.severity}, ${t.roles})`)))));
    }
    await load();
  }

  document.addEventListener("DOMContentLoaded", start);
})();

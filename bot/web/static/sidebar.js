"use strict";
// The staff sidebar. Inside WeCom's chat toolbar it identifies the member by OAuth (server side)
// and uses the JS-SDK (wx.agentConfig, getCurExternalContact/getCurExternalChat, sendChatMessage)
// when the page has it; in a normal browser it runs in manual mode: paste a message, copy a reply.
(() => {
  const { h, api, clear, badge } = Copilot;
  const inWeCom = typeof window.wx !== "undefined" && /wxwork/i.test(navigator.userAgent);

  async function start() {
    const me = await Copilot.session();
    if (!me) {
      document.getElementById("login").classList.remove("hidden");
      document.getElementById("login-form").onsubmit = async (ev) => {
        ev.preventDefault();
        try { await Copilot.login(document.getElementById("token").value); location.reload(); }
        catch (e) { document.getElementById("login-error").textContent = e.message; }
      };
      return;
    }
    document.getElementById("app").classList.remove("hidden");
    document.getElementById("who").textContent = me.name;
    document.getElementById("mode").textContent = inWeCom ? "企业微信模式" : "手动模式";
    document.getElementById("suggest").onclick = suggest;
    document.getElementById("chat-id").onchange = relay;
    document.getElementById("material-search").onclick = materials;
    if (inWeCom) await wecomContext();
    await materials();
  }

  // The material library, best first; using one counts the use (and gets an image's WeCom media_id).
  async function materials() {
    const box = document.getElementById("materials");
    const q = document.getElementById("material-q").value.trim();
    try {
      const items = (await api("GET", `/api/v1/materials?sort=best&limit=20${q ? "&q=" + encodeURIComponent(q) : ""}`)).items;
      if (!items.length) return clear(box, h("p", { class: "muted" }, "还没有素材（培训师在控制台添加）"));
      clear(box, ...items.map(m => {
        const status = h("span", { class: "muted" });
        return h("div", { class: "card material", "data-id": m.id },
          h("div", {}, badge(m.kind), " ", h("strong", {}, m.title)), m.content ? h("div", { class: "reply" }, m.content) : null,
          h("div", { class: "row" }, h("span", { class: "muted" }, `用过 ${m.stats.uses} 次 · 回复 ${m.stats.replies_24h}`),
            h("button", { class: "secondary use", onclick: async () => {
              const chat = document.getElementById("chat-id").value.trim();
              const r = await api("POST", `/api/v1/materials/${encodeURIComponent(m.id)}/uses`, { channel: "sidebar", ...(chat ? { conversation_id: `g:${chat}` } : {}) });
              if (m.kind === "text" || m.kind === "link") await send({ reply: m.content, script_id: "" }, status);
              else if (inWeCom && r.media_id) window.wx.invoke("sendChatMessage", { msgtype: m.kind === "image" ? "image" : "file", [m.kind === "image" ? "image" : "file"]: { mediaid: r.media_id } }, () => { status.textContent = "已发送"; });
              else status.textContent = "已记录";
            } }, inWeCom ? "发送" : "使用"), status));
      }));
    } catch (e) { clear(box, h("p", { class: "error" }, e.message)); }
  }

  async function wecomContext() {
    try {
      const cfg = await api("GET", `/api/v1/sidebar/jsconfig?url=${encodeURIComponent(location.href)}`);
      window.wx.agentConfig({ corpid: cfg.corpid, agentid: cfg.agentid, timestamp: cfg.timestamp, nonceStr: cfg.nonceStr,
        signature: cfg.signature, jsApiList: cfg.jsApiList, success: () => {
          window.wx.invoke("getCurExternalChat", {}, (res) => { if (res.chatId) { document.getElementById("chat-id").value = res.chatId; relay(); } });
        } });
    } catch (e) { document.getElementById("mode").textContent = "手动模式（" + e.message + "）"; }
  }

  async function suggest() {
    const text = document.getElementById("customer-text").value.trim();
    if (!text) return;
    const box = document.getElementById("suggestions");
    try {
      const [r, a] = await Promise.all([api("POST", "/api/v1/suggestions", { text, k: 3 }), api("POST", "/api/v1/analyze", { text })]);
      clear(document.getElementById("analysis"), badge(a.intent.label), badge(a.sentiment.label, a.sentiment.label),
        ...a.sensitive.map(s => badge(`${s.category}: ${s.match}`, s.severity)));
      if (!r.suggestions.length) return clear(box, h("p", { class: "muted" }, "没有合适的话术"));
      clear(box, ...r.suggestions.map(s => {
        const status = h("span", { class: "muted" });
        return h("div", { class: "card suggestion", "data-id": s.script_id },
          h("div", { class: "reply" }, s.reply), h("div", { class: "muted" }, `${s.question} · 匹配度 ${s.score >= 0.005 ? Math.round(s.score * 100) + "%" : "<1%"}`),
          h("div", { class: "row" },
            h("button", { class: "send", onclick: () => send(s, status, text) }, inWeCom ? "发送" : "复制"),
            h("button", { class: "secondary adopt", onclick: async () => { await api("POST", `/api/v1/suggestions/${encodeURIComponent(s.script_id)}/feedback`, { adopted: true, query: text }); status.textContent = "已采纳"; } }, "有用"),
            h("button", { class: "secondary reject", onclick: async () => { await api("POST", `/api/v1/suggestions/${encodeURIComponent(s.script_id)}/feedback`, { adopted: false, query: text }); status.textContent = "已标记不合适"; } }, "不合适"),
            status));
      }));
    } catch (e) { clear(box, h("p", { class: "error" }, e.message)); }
  }

  async function send(s, status, text) {
    if (inWeCom) {
      window.wx.invoke("sendChatMessage", { msgtype: "text", text: { content: s.reply } }, () => { status.textContent = "已发送"; });
    } else {
      try { await navigator.clipboard.writeText(s.reply); status.textContent = "已复制"; } catch (e) { status.textContent = "请手动复制"; }
    }
    if (s.script_id) api("POST", `/api/v1/suggestions/${encodeURIComponent(s.script_id)}/feedback`, { adopted: true, query: text }).catch(() => {});
  }

  async function relay() {
    const chat = document.getElementById("chat-id").value.trim();
    const box = document.getElementById("relay");
    if (!chat) return clear(box, "—");
    const open = (await api("GET", `/api/v1/relays?status=open&chat_id=${encodeURIComponent(chat)}`)).items;
    if (!open.length) return clear(box, h("p", { class: "muted" }, "此群没有进行中的接龙"));
    const s = await api("GET", `/api/v1/relays/${open[0].id}`);
    const status = h("span", { class: "muted" });
    clear(box, h("pre", { class: "list", id: "sidebar-relay" }, s.list_text),
      h("button", { onclick: () => send({ reply: s.list_text, script_id: "" }, status) }, inWeCom ? "发送名单到群" : "复制名单"), status);
  }

  document.addEventListener("DOMContentLoaded", start);
})();

// Shared by the console and the sidebar: DOM building without innerHTML (all user content is
// text), and API calls with the session cookie plus the CSRF token.
"use strict";
const Copilot = (() => {
  let csrf = "";
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "class") el.className = v;
      else if (v !== null && v !== undefined && v !== false) el.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  async function api(method, path, body, contentType) {
    const headers = { "X-CSRF-Token": csrf };
    let payload = body;
    if (body !== undefined && !contentType) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
    if (contentType) headers["Content-Type"] = contentType;
    const resp = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
    const type = resp.headers.get("Content-Type") || "";
    const data = type.includes("json") ? await resp.json() : await resp.text();
    if (!resp.ok) {
      const msg = data && data.error ? `${data.error.code}: ${data.error.message}` : `HTTP ${resp.status}`;
      const err = new Error(msg); err.status = resp.status; throw err;
    }
    return data;
  }
  async function session() {
    try { const s = await api("GET", "/console/session"); csrf = s.csrf; return s; } catch (e) { return null; }
  }
  async function login(token) {
    const resp = await fetch("/console/login", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token }), credentials: "same-origin" });
    const data = await resp.json();
    if (!resp.ok) throw new Error(data.error ? data.error.message : "login failed");
    csrf = data.csrf; return data;
  }
  async function logout() { await api("POST", "/console/logout"); csrf = ""; }
  function clear(el, ...children) { el.replaceChildren(...children); return el; }
  // Text with sensitive hits highlighted by their offsets (start/end index the original text).
  function highlighted(text, hits) {
    const spans = [...(hits || [])].sort((a, b) => a.start - b.start);
    const out = []; let at = 0;
    for (const hit of spans) {
      if (hit.start < at) continue;
      out.push(text.slice(at, hit.start));
      out.push(h("mark", { class: "hit", title: `${hit.category} · ${hit.severity} · ${hit.rule}` }, text.slice(hit.start, hit.end)));
      at = hit.end;
    }
    out.push(text.slice(at));
    return out;
  }
  function badge(text, cls) { return h("span", { class: `badge ${cls || ""}` }, text); }
  function fmtTime(ms) { return new Date(ms).toLocaleString(); }
  return { h, api, session, login, logout, clear, highlighted, badge, fmtTime };
})();

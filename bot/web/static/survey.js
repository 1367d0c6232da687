"use strict";
(() => {
  const path = location.pathname;
  const stars = document.getElementById("stars");
  const send = document.getElementById("send");
  const msg = document.getElementById("survey-msg");
  let rating = 0;
  for (let i = 1; i <= 5; i++) {
    const b = document.createElement("button");
    b.type = "button"; b.className = "secondary star"; b.dataset.rating = String(i); b.textContent = `${i} 分`;
    b.onclick = () => {
      rating = i;
      for (const s of stars.querySelectorAll("button")) s.classList.toggle("active", Number(s.dataset.rating) <= i);
      send.disabled = false;
    };
    stars.append(b);
  }
  send.onclick = async () => {
    send.disabled = true;
    try {
      const r = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ rating, comment: document.getElementById("comment").value }) });
      const body = await r.json().catch(() => ({}));
      if (!r.ok) throw new Error((body.error && body.error.message) || `HTTP ${r.status}`);
      document.getElementById("survey").replaceChildren(Object.assign(document.createElement("h2"),
        { id: "thanks", textContent: body.reopened ? "谢谢您，我们会尽快再联系您。" : "谢谢您的反馈！" }));
    } catch (e) { msg.textContent = e.message; send.disabled = false; }
  };
})();

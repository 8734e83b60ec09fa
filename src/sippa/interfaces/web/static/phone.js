// The phone page: dial, answer, hang up, hold, DTMF; live updates from /api/v1/events (SSE).
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const callsBox = document.getElementById("calls");
  const errorBox = document.getElementById("phone-error");
  const target = document.getElementById("target");
  let calls = [];

  function showError(text) {
    errorBox.textContent = text || "";
    errorBox.hidden = !text;
  }

  async function api(method, path, body) {
    const init = { method, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch("/api/v1" + path, init);
    if (!response.ok) {
      let detail = response.statusText;
      try { const j = await response.json(); detail = typeof j.detail === "string" ? j.detail : JSON.stringify(j.detail); } catch (e) { /* not JSON */ }
      throw new Error(detail);
    }
    return response.status === 204 ? null : response.json();
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v; else if (k.startsWith("data-")) node.setAttribute(k, v); else node[k] = v;
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  function action(label, cls, fn) {
    const b = el("button", { type: "button", class: cls }, label);
    b.addEventListener("click", async () => {
      showError("");
      try { await fn(); await refresh(); } catch (e) { showError(e.message); }
    });
    return b;
  }

  function securityPanel(sec, call) {
    const dl = el("dl");
    const rows = [
      ["Padlock", sec.padlock ? "yes" : "no"],
      ["Signalling", sec.transport + (sec.signalling_secure ? " (certificate validated)" : "")],
      ["TLS version", sec.tls_version], ["Cipher", sec.cipher], ["Group", sec.group],
      ["Peer certificate", sec.peer_subject], ["SRTP suite", sec.srtp_suite || "none (plain RTP)"],
    ];
    const media = call.media || {};
    rows.push(["Codec", media.codec], ["Media to", media.remote],
      ["Packets sent / received", `${call.packets_sent || 0} / ${call.packets_received || 0}`]);
    const st = call.session_timer;
    rows.push(["Session timer", st ? `${st.interval} s, refreshed by ${st.refresher === "us"
      ? "this phone" : "the other party"} (${st.refreshes} refreshes, expires in ${st.expires_in} s)`
      : "none (RFC 4028 not in use)"]);
    rows.push(["Provisional responses", call.rel100 ? "reliable (100rel, PRACKed)" : "unreliable"]);
    for (const [k, v] of rows) if (v) { dl.append(el("dt", {}, k), el("dd", {}, String(v))); }
    const reasons = (sec.reasons || []).map((r) => el("li", {}, r));
    const panel = el("details", { class: "security" }, el("summary", {}, "Security details"), dl,
      reasons.length ? el("ul", { class: "reasons" }, ...reasons) : null);
    // the cards are redrawn on each update: keep the panel open if the person opened it
    panel.open = opened.has(call.id);
    panel.addEventListener("toggle", () => {
      if (panel.open) opened.add(call.id); else opened.delete(call.id);
    });
    return panel;
  }

  // call quality over time (jitter, RTT, loss from RTP/RTCP), one series per call
  const samples = new Map();
  const opened = new Set();
  const SVG = "http://www.w3.org/2000/svg";

  function sample(c) {
    const q = c.quality;
    if (!q) return;
    const list = samples.get(c.id) || [];
    list.push({ jitter: q.jitter_ms || 0, rtt: q.rtt_ms, lost: q.packets_lost || 0 });
    if (list.length > 90) list.shift();
    samples.set(c.id, list);
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    return node;
  }

  function plot(id, q) {
    const list = samples.get(id) || [];
    const box = el("div", { class: "quality" });
    if (!q) return box;
    const w = 300, h = 70;
    const top = Math.max(5, ...list.map((s) => Math.max(s.jitter, s.rtt || 0))) * 1.2;
    const chart = svg("svg", { viewBox: `0 0 ${w} ${h}`, width: w, height: h, role: "img",
      "aria-label": "jitter and round-trip time" });
    chart.append(svg("rect", { x: 0, y: 0, width: w, height: h, class: "plot-bg" }));
    for (const [key, cls] of [["jitter", "plot-jitter"], ["rtt", "plot-rtt"]]) {
      const points = list.map((s, i) => s[key] === null || s[key] === undefined ? null
        : `${(i / Math.max(list.length - 1, 1)) * w},${h - (s[key] / top) * h}`)
        .filter((p) => p !== null);
      if (points.length) chart.append(svg("polyline", { points: points.join(" "), class: cls }));
    }
    const fmt = (v) => (v === null || v === undefined ? "–" : `${v} ms`);
    const lost = q.remote_fraction_lost === null || q.remote_fraction_lost === undefined ? "–"
      : `${Math.round(q.remote_fraction_lost * 100)} %`;
    box.append(chart, el("p", { class: "legend" },
      el("span", { class: "key-jitter" }, `jitter ${fmt(q.jitter_ms)}`), " · ",
      el("span", { class: "key-rtt" }, `RTT ${fmt(q.rtt_ms)}`), " · ",
      `lost ${q.packets_lost} (peer reports ${lost})`));
    return box;
  }

  function render() {
    callsBox.replaceChildren();
    if (!calls.length) { callsBox.append(el("p", { class: "none" }, "No calls.")); return; }
    for (const c of calls) {
      const sec = c.security || {};
      const why = (sec.reasons || []).join("; ");
      const lock = el("span", { class: "padlock " + (sec.padlock ? "secure" : "insecure"),
        title: sec.padlock ? "secure call" : "not secure: " + why },
        el("img", { src: sec.padlock ? "/static/lock.svg" : "/static/unlock.svg", alt: "", width: 20, height: 20 }),
        sec.padlock ? " Secure" : " Not secure");
      lock.setAttribute("data-padlock", sec.padlock ? "yes" : "no");
      const state = String(c.state || "");
      const buttons = el("div", { class: "buttons" });
      if (c.direction === "incoming" && /ring|incoming|early/i.test(state)) buttons.append(action("Answer", "", () => api("POST", `/calls/${c.id}/answer`)));
      if (/held|hold/i.test(state) || c.on_hold) buttons.append(action("Resume", "", () => api("POST", `/calls/${c.id}/resume`)));
      else if (/active|confirmed/i.test(state)) buttons.append(action("Hold", "", () => api("POST", `/calls/${c.id}/hold`)));
      if (/active|held/i.test(state)) {
        buttons.append(action("Transfer", "", () => {
          const to = target.value.trim();
          if (!to) throw new Error("type where to transfer the call in the number field");
          return api("POST", `/calls/${c.id}/transfer`, { target: to });
        }));
      }
      buttons.append(action("Hang up", "hangup", () => api("POST", `/calls/${c.id}/hangup`)));
      callsBox.append(el("div", { class: "call-card", "data-call": c.id },
        el("div", { class: "head" },
          el("span", { class: "who" }, c.remote || c.peer || c.target || "call"),
          el("span", { class: "state" }, state), lock),
        buttons, el("a", { class: "trace-link", href: `/phone/calls/${encodeURIComponent(c.id)}/trace` }, "SIP trace"),
        securityPanel(sec, c), plot(c.id, c.quality)));
    }
  }

  function when(epoch) {
    return typeof epoch === "number" ? new Date(epoch * 1000).toLocaleString() : "";
  }

  async function refreshHistory() {
    const body = document.querySelector("#history tbody");
    const rows = await api("GET", "/history?count=20");
    body.replaceChildren(...rows.map((h) => el("tr", {},
      el("td", {}, when(h.started)), el("td", {}, h.direction || ""), el("td", {}, h.remote || ""),
      el("td", {}, h.end_reason || ""), el("td", {}, h.padlock ? "yes" : "no"))));
  }

  let asked = 0;
  async function refresh() {
    const mine = ++asked;
    try {
      const before = calls.length;
      const now = await api("GET", "/calls");
      if (mine !== asked) return;  // a later refresh is on its way: never show an older state
      calls = now;
      calls.forEach(sample);
      render();
      if (calls.length < before) await refreshHistory();
    } catch (e) { showError(e.message); }
  }

  function updateLine(l) {
    const li = document.querySelector(`#line-list li[data-line="${l.line}"]`);
    if (!li) return;
    const via = l.registered_via === "alternate"  // Alternate Proxy: why the line is there
      ? ` via alternate proxy (${l.registered_via_reason || ""})` : "";
    li.querySelector(".state").textContent = l.registered ? "Registered" + via : (l.state || "");
    li.querySelector(".reason").textContent = l.reason || "";
    const noreg = li.querySelector(".noreg");  // Make/Ans Call Without Reg = No, not registered
    if (noreg) noreg.textContent = l.calls_refused || "";
    const r = l.source_restriction;
    li.querySelector(".refused").textContent = r && r.refused
      ? `${r.refused} refused (Restrict Source IP), last ${r.last_refused_method} from ${r.last_refused_source}`
      : "";
    const mwi = li.querySelector(".mwi");
    if (mwi) {
      mwi.textContent = voicemailText(l.mwi);
      mwi.classList.toggle("waiting", Boolean(l.mwi && l.mwi.messages_waiting));
    }
    (l.blf || []).forEach(updateKey);
  }

  function updateKey(k) {
    const li = document.querySelector(`#blf-list li[data-key="${k.key}"]`);
    if (!li) return;
    li.title = k.uri;
    const lamp = li.querySelector(".lamp");
    lamp.className = `lamp lamp-${k.lamp}`;
    li.querySelector(".text").textContent = blfText(k);
  }

  // the same words as sippa.app.blf.blf_text (the server-rendered page)
  function blfText(k) {
    const words = { idle: "idle", ringing: "ringing", busy: "on a call", unknown: "unknown" };
    const lamp = k.lamp || "unknown";
    let text = `${k.label}: ${words[lamp] || lamp}`;
    if ((lamp === "ringing" || lamp === "busy") && k.remote) {
      text += ` (${lamp === "ringing" ? "from" : "with"} ${k.remote})`;
    } else if (lamp === "unknown") {
      text += ` (subscription ${k.subscription || "off"}${k.reason ? ": " + k.reason : ""})`;
    }
    return text;
  }

  // the same words as sippa.app.mwi.voicemail_text (the server-rendered page)
  function voicemailText(m) {
    if (!m) return "";
    if (m.updated === null || m.updated === undefined) {
      const state = m.subscription || "off";
      if (state === "off") return "";
      return `Voicemail: ${state}` + (m.reason ? ` (${m.reason})` : "");
    }
    if (m.messages_waiting) {
      return `Voicemail: ${m.new} new` + (m.new_urgent ? ` (${m.new_urgent} urgent)` : "")
        + (m.old ? `, ${m.old} old` : "");
    }
    return "Voicemail: no new messages" + (m.old ? ` (${m.old} old)` : "");
  }

  // a BLF key with speed dial (fnc=...+sd) calls the watched URI on line 1
  const keys = document.getElementById("blf-list");
  if (keys) keys.addEventListener("click", async (ev) => {
    const button = ev.target.closest("button.key-dial");
    if (!button) return;
    showError("");
    try {
      await api("POST", "/calls", { target: button.dataset.target, line: 1 });
      await refresh();
    } catch (e) { showError(e.message); }
  });

  // the line's dial plan on a typed number: what it becomes, or why it will be refused
  const hint = document.getElementById("dial-hint");
  let hintSeq = 0;
  async function updateHint() {
    const number = target.value.trim();
    const seq = ++hintSeq;
    if (!hint) return;
    if (!/^[0-9*#]+$/.test(number)) { hint.textContent = ""; return; }
    try {
      const line = Number(document.getElementById("line").value) || 1;
      const v = await api("GET", `/dial-plan?number=${encodeURIComponent(number)}&line=${line}`);
      if (seq !== hintSeq) return;
      if (v.outcome === "allowed") {
        hint.textContent = (v.target !== number ? `Dial plan: calls ${v.target}` : "Dial plan: valid number")
          + (v.dial_now ? " (complete)" : "");
      } else {
        hint.textContent = v.reason || "";
      }
    } catch (e) { if (seq === hintSeq) hint.textContent = ""; }
  }
  target.addEventListener("input", updateHint);
  document.getElementById("line").addEventListener("change", updateHint);

  document.getElementById("dial-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    showError("");
    try {
      await api("POST", "/calls", { target: target.value.trim(), line: Number(document.getElementById("line").value) });
      await refresh();
    } catch (e) { showError(e.message); }
  });

  document.getElementById("pad").addEventListener("click", async (ev) => {
    const key = ev.target.getAttribute && ev.target.getAttribute("data-key");
    if (!key) return;
    const up = calls.find((c) => /active|confirmed/i.test(String(c.state)));
    if (up) {
      try { await api("POST", `/calls/${up.id}/dtmf`, { digits: key }); } catch (e) { showError(e.message); }
    } else {
      target.value += key;
      updateHint();
    }
  });

  const events = new EventSource("/api/v1/events");
  events.addEventListener("hello", (ev) => {
    const data = JSON.parse(ev.data);
    calls = data.calls || [];
    (data.lines || []).forEach(updateLine);
    render();
  });
  events.addEventListener("call", () => refresh());
  events.addEventListener("line", (ev) => {
    const data = JSON.parse(ev.data);
    if (data.line !== undefined) updateLine(data);
  });
  refresh();
  // media counters change without events: refresh while a call is up
  setInterval(() => { if (calls.length) refresh(); }, 2000);
})();

// edge-hub dashboard: plain JS, no build step. Polls the JSON API, follows /api/stream.
// Auth: when the hub has a token, a login form POSTs it (JSON body) to /api/login, which
// sets an HttpOnly session cookie; the page never keeps the token, in a URL or in storage.
"use strict";

const PALETTE = ["#58a6ff", "#3fb950", "#d29922", "#f778ba", "#a371f7", "#39c5cf", "#ff7b72", "#e3b341"];
const FEED_MAX = 300;
// every API call carries it: a cookie request that changes something needs it (CSRF)
const CSRF = { "X-Edge-Hub-CSRF": "1" };
localStorage.removeItem("edgeHubToken"); // where dashboards before issue 11 kept the token
let selected = null;
let feedCount = 0;
let started = false;
let source = null;
const colors = {};

class Unauthorized extends Error {}

function color(key) {
  if (!(key in colors)) colors[key] = PALETTE[Object.keys(colors).length % PALETTE.length];
  return colors[key];
}

async function api(path) {
  const r = await fetch(path, { credentials: "same-origin", headers: CSRF });
  if (r.status === 401) {
    showLogin(started ? "The session ended; log in again." : "");
    throw new Unauthorized(path);
  }
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}

// --- login ---------------------------------------------------------------------------------
function showLogin(message) {
  document.body.classList.add("locked");
  document.getElementById("login").hidden = false;
  document.getElementById("login-error").textContent = message;
  document.getElementById("logout").hidden = true;
  if (source) { source.close(); source = null; }
  setConn(false, "logged out");
  document.getElementById("login-token").focus();
}

async function login(ev) {
  ev.preventDefault();
  const input = document.getElementById("login-token");
  const r = await fetch("/api/login", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", ...CSRF },
    body: JSON.stringify({ token: input.value }),
  });
  input.value = "";
  if (!r.ok) {
    let why = "login failed (" + r.status + ")";
    try { why = (await r.json()).error || why; } catch (_) { /* not JSON */ }
    document.getElementById("login-error").textContent = why;
    return;
  }
  document.getElementById("login").hidden = true;
  document.body.classList.remove("locked");
  start(true);
}

async function logout() {
  await fetch("/api/logout", { method: "POST", credentials: "same-origin", headers: CSRF });
  showLogin("Logged out.");
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("data-")) e.setAttribute(k, v); else e[k] = v;
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k ?? ""));
  return e;
}

function ago(iso) {
  if (!iso) return "never";
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return Math.round(s) + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " d ago";
}

function telemetrySummary(t) {
  if (!t) return ["–", "–"];
  const fps = Object.values(t.streams || {}).reduce((a, s) => a + s.fps_processed, 0);
  const det = Object.values(t.detectors || {});
  const inf = det.length ? det.reduce((a, d) => a + d.inference_ms, 0) / det.length : null;
  return [fps.toFixed(1), inf == null ? "–" : inf.toFixed(1)];
}

async function refreshDevices() {
  const { devices } = await api("/api/devices");
  const body = document.querySelector("#devices tbody");
  body.replaceChildren();
  for (const d of devices) {
    const [fps, inf] = telemetrySummary(d.telemetry);
    const state = d.state === "unknown" ? "unknown" : d.state;
    const tr = el("tr", { "data-device": d.device_id, "data-state": state, class: state },
      el("td", {}, el("span", { class: "dot " + state, title: state })),
      el("td", { title: d.device_id }, d.device_id),
      el("td", { title: d.last_seen || "" }, ago(d.last_seen)),
      el("td", { class: "num" }, fps), el("td", { class: "num" }, inf),
      el("td", { class: "num" }, String(d.events)));
    if (d.device_id === selected) tr.classList.add("sel");
    tr.onclick = () => { selected = d.device_id; refreshDevices(); refreshTelemetry(); };
    body.append(tr);
  }
  document.getElementById("devices-empty").hidden = devices.length > 0;
  document.getElementById("kpi-devices").textContent = devices.length;
  document.getElementById("kpi-online").textContent = devices.filter(d => d.state === "online").length;
  if (!selected && devices.length) { selected = devices[0].device_id; refreshTelemetry(); }
  renderRegions(devices.find(d => d.device_id === selected));
}

// Per-zone counts (objects in each zone now, by label) and per-line crossings, from the
// selected device's last telemetry.
function renderRegions(d) {
  const streams = (d && d.telemetry && d.telemetry.streams) || {};
  const zones = [], lines = [];
  for (const [name, s] of Object.entries(streams)) {
    for (const [zone, byLabel] of Object.entries(s.zones || {})) {
      const total = Object.values(byLabel).reduce((a, n) => a + n, 0);
      const parts = Object.entries(byLabel).map(([l, n]) => l + " " + n).join(", ");
      zones.push(el("tr", { "data-zone": zone, "data-stream": name },
        el("td", {}, name), el("td", {}, zone), el("td", { class: "num" }, String(total)),
        el("td", {}, parts || "–")));
    }
    for (const [line, c] of Object.entries(s.lines || {})) {
      lines.push(el("tr", { "data-line": line, "data-stream": name },
        el("td", {}, name), el("td", {}, line), el("td", { class: "num" }, String(c.in)),
        el("td", { class: "num" }, String(c.out))));
    }
  }
  document.querySelector("#zones tbody").replaceChildren(...zones);
  document.querySelector("#lines tbody").replaceChildren(...lines);
  document.getElementById("zones").hidden = zones.length === 0;
  document.getElementById("lines").hidden = lines.length === 0;
  document.getElementById("regions-empty").hidden = zones.length + lines.length > 0;
  document.getElementById("regions-device").textContent = d ? d.device_id : "";
}

// What an event says about regions: the zone entered or left, the line crossed, or the
// zones the object is in.
function regionText(e) {
  if (e.phase === "enter") return "→ " + e.zone;
  if (e.phase === "exit") return "← " + e.zone;
  if (e.phase === "cross") return e.line + " " + e.direction;
  return (e.zones || []).join(", ");
}

function addEvent(e, fresh) {
  const body = document.querySelector("#feed tbody");
  const t = new Date(e.ts);
  const tr = el("tr", { "data-id": e.id, class: fresh ? "new" : "" },
    el("td", { title: e.ts }, t.toLocaleTimeString()),
    el("td", {}, e.device_id),
    el("td", {}, el("span", { class: "tag" }, e.label)),
    el("td", {}, e.kind),
    el("td", { class: "num" }, e.score.toFixed(2)),
    el("td", { class: "phase-" + e.phase }, e.phase),
    el("td", { class: "zones" }, regionText(e)),
    el("td", { class: "num" }, String(e.seq)),
    el("td", { class: "num" }, e.latency_ms.toFixed(1)));
  body.prepend(tr);
  while (body.children.length > FEED_MAX) body.lastChild.remove();
  feedCount += 1;
  document.getElementById("feed-count").textContent = feedCount + " received";
}

function setConn(ok, text) {
  document.getElementById("conn-dot").className = "dot " + (ok ? "online" : "offline");
  document.getElementById("conn-text").textContent = text;
}

async function startFeed() {
  try {
    const { events } = await api("/api/events?limit=50");
    document.querySelector("#feed tbody").replaceChildren();
    for (const e of events.reverse()) addEvent(e, false);
  } catch (err) {
    if (err instanceof Unauthorized) return;
    console.warn(err);
  }
  // same origin: the session cookie goes with it (EventSource cannot set headers)
  const es = new EventSource("/api/stream");
  source = es;
  es.addEventListener("event", m => addEvent(JSON.parse(m.data), true));
  es.onopen = () => setConn(true, "live");
  es.onerror = () => {
    setConn(false, "reconnecting…");
    // closed for good (e.g. 401 after the session expired): find out why
    if (es.readyState === EventSource.CLOSED) api("/api/session").catch(() => {});
  };
}

// --- tiny SVG charts -------------------------------------------------------------------------
const SVGNS = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function frame(box, ymax, t0, t1) {
  const W = box.clientWidth || 500, H = box.clientHeight || 170, L = 38, B = 18, T = 16;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}` });
  const x = t => L + (W - L - 6) * (t - t0) / Math.max(1, t1 - t0);
  const y = v => T + (H - T - B) * (1 - v / ymax);
  for (let i = 0; i <= 3; i++) {
    const v = ymax * i / 3;
    root.append(svg("line", { x1: L, x2: W - 6, y1: y(v), y2: y(v), stroke: "#222a33" }));
    const lab = svg("text", { x: L - 5, y: y(v) + 3, "text-anchor": "end" });
    lab.textContent = v >= 100 ? v.toFixed(0) : v.toFixed(1);
    root.append(lab);
  }
  for (const t of [t0, (t0 + t1) / 2, t1]) {
    const lab = svg("text", { x: x(t), y: H - 4, "text-anchor": "middle" });
    lab.textContent = new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    root.append(lab);
  }
  return { root, x, y, W, L, T };
}

function legend(f, names) {
  let off = f.L;
  for (const n of names) {
    f.root.append(svg("rect", { x: off, y: 2, width: 8, height: 8, fill: color(n), rx: 2 }));
    const t = svg("text", { x: off + 12, y: 10, class: "legend" });
    t.textContent = n; f.root.append(t); off += 20 + n.length * 6.5;
  }
}

function lineChart(box, series, t0, t1) {
  const all = series.flatMap(s => s.points.map(p => p[1]));
  const ymax = Math.max(1, ...all) * 1.15;
  const f = frame(box, ymax, t0, t1);
  for (const s of series) {
    if (!s.points.length) continue;
    const d = s.points.map((p, i) => (i ? "L" : "M") + f.x(p[0]).toFixed(1) + " " + f.y(p[1]).toFixed(1)).join("");
    f.root.append(svg("path", { d, fill: "none", stroke: color(s.name), "stroke-width": 1.6 }));
  }
  legend(f, series.map(s => s.name));
  if (!all.length) {
    const t = svg("text", { x: f.W / 2, y: 90, "text-anchor": "middle" });
    t.textContent = "no telemetry yet"; f.root.append(t);
  }
  box.replaceChildren(f.root);
}

function barChart(box, counts, bucket, t0, t1) {
  const byT = {};
  for (const c of counts) (byT[c.t] ||= []).push(c);
  const totals = Object.values(byT).map(cs => cs.reduce((a, c) => a + c.count, 0));
  const f = frame(box, Math.max(1, ...totals) * 1.15, t0, t1);
  const bw = Math.max(2, (f.x(t0 + bucket) - f.x(t0)) * 0.8);
  for (const [t, cs] of Object.entries(byT)) {
    let acc = 0;
    for (const c of cs) {
      const yTop = f.y(acc + c.count), yBot = f.y(acc);
      f.root.append(svg("rect", { x: f.x(+t), y: yTop, width: bw, height: Math.max(0.5, yBot - yTop), fill: color(c.label) }));
      acc += c.count;
    }
  }
  legend(f, [...new Set(counts.map(c => c.label))]);
  box.replaceChildren(f.root);
}

async function refreshTelemetry() {
  if (!selected) return;
  const now = Date.now() / 1000, since = now - 3600;
  const { telemetry } = await api(`/api/devices/${encodeURIComponent(selected)}/telemetry?since=${since}`);
  document.getElementById("chart-device").textContent = selected;
  const pts = k => telemetry.filter(r => r[k] != null).map(r => [Date.parse(r.ts) / 1000, r[k]]);
  const t0 = telemetry.length ? Math.min(Date.parse(telemetry[0].ts) / 1000, now - 60) : now - 600;
  lineChart(document.getElementById("chart-fps"), [{ name: selected, points: pts("fps") }], t0, now);
  lineChart(document.getElementById("chart-inf"), [{ name: selected, points: pts("inference_ms") }], t0, now);
}

async function refreshLabels() {
  const now = Date.now() / 1000;
  const { counts, bucket_s } = await api(`/api/stats/labels?bucket=60&since=${now - 3600}`);
  barChart(document.getElementById("chart-labels"), counts, bucket_s, now - 3600, now);
  const recent = counts.filter(c => c.t >= now - 120 && c.t < now - 60).reduce((a, c) => a + c.count, 0);
  const last = counts.filter(c => c.t >= now - 60).reduce((a, c) => a + c.count, 0);
  document.getElementById("kpi-rate").textContent = recent || last;
}

async function refreshGaps() {
  const { gaps } = await api("/api/gaps");
  const body = document.querySelector("#gaps tbody");
  body.replaceChildren(...gaps.map(g => el("tr", { "data-device": g.device_id },
    el("td", {}, g.device_id), el("td", { class: "num" }, String(g.from_seq)),
    el("td", { class: "num" }, String(g.to_seq)), el("td", { class: "num" }, String(g.missing)),
    el("td", {}, g.cause === "outbox_reset" ? "lost at the device (outbox reset)" : "in transit"),
    el("td", {}, g.after_ts ? new Date(g.after_ts).toLocaleString() : ""))));
  document.getElementById("gaps-empty").hidden = gaps.length > 0;
  document.getElementById("kpi-gaps").textContent = gaps.reduce((a, g) => a + g.missing, 0);
}

async function refreshQuarantine() {
  const { total, quarantine } = await api("/api/quarantine?limit=20");
  const body = document.querySelector("#quarantine tbody");
  body.replaceChildren(...quarantine.map(q => el("tr", { "data-device": q.device_id || "" },
    el("td", {}, q.device_id || "?"), el("td", {}, q.reason), el("td", {}, q.detail),
    el("td", { class: "num" }, String(q.payload_bytes)), el("td", { class: "num" }, String(q.count)),
    el("td", {}, q.last_at ? new Date(q.last_at).toLocaleString() : ""))));
  document.getElementById("quarantine-empty").hidden = quarantine.length > 0;
  document.getElementById("kpi-quarantine").textContent = total;
}

function every(ms, fn) {
  const run = () => {
    if (document.body.classList.contains("locked")) return;
    fn().catch(err => { if (!(err instanceof Unauthorized)) console.warn(err); });
  };
  run(); setInterval(run, ms);
}

function start(loggedIn) {
  document.getElementById("logout").hidden = !loggedIn;
  if (started) {  // logged in again: the polls resume by themselves, the stream does not
    refreshDevices().catch(() => {});
    startFeed();
    return;
  }
  started = true;
  every(1000, refreshDevices);
  every(5000, refreshTelemetry);
  every(10000, refreshLabels);
  every(5000, refreshGaps);
  every(5000, refreshQuarantine);
  startFeed();
}

async function boot() {
  document.getElementById("login").addEventListener("submit", login);
  document.getElementById("logout").addEventListener("click", logout);
  try {
    const s = await api("/api/session");  // 401: showLogin() ran
    start(s.token_required);
  } catch (err) {
    if (!(err instanceof Unauthorized)) { console.warn(err); start(false); }
  }
}

boot();

// A device page: status (the status topic's online / offline / stopped), telemetry charts
// (frames/s per video stream and chunks/s per audio stream apart, inference ms, outbox
// depth and drops), the models really in use, gaps, quarantine, and commands with the
// device's reply.
import { api, apiPost, el, ago, fixed, warn } from "./core.js";
import { lineChart } from "./charts.js";
import { gapRows, quarantineRows } from "./overview.js";

const POLL_MS = 500;
const REPLY_TIMEOUT_MS = { snapshot: 30000, config: 30000, model: 180000 };
let device = null;
let timer = null;

const $ = id => document.getElementById(id);

function models(t) {
  const rows = Object.entries((t && t.detectors) || {}).map(([name, d]) => {
    const acc = d.accelerator || {};
    const provider = acc.active ? acc.active + (acc.backend ? " (" + acc.backend + ")" : "") : "–";
    return el("tr", { "data-detector": name },
      el("td", {}, name), el("td", {}, d.model ? d.model.name : "–"),
      el("td", {}, d.model ? d.model.version : "–"), el("td", { class: "provider" }, provider),
      el("td", {}, d.source || "config"), el("td", { class: "num" }, fixed(d.inference_ms)),
      el("td", { class: "num calls" }, String(d.calls ?? "–")));
  });
  $("dev-models").querySelector("tbody").replaceChildren(...rows);
  $("dev-models-empty").hidden = rows.length > 0;
}

function status(d) {
  const state = d.state || "unknown";
  $("dev-state").className = "state " + state;
  $("dev-state").dataset.state = state;
  $("dev-state").replaceChildren(el("span", { class: "dot " + state }), " " + state);
  const t = d.telemetry || {};
  const facts = [
    ["since", d.state_at ? new Date(d.state_at).toLocaleString() + " (" + ago(d.state_at) + ")" : "–"],
    ["last seen", ago(d.last_seen)], ["version", d.version || "–"], ["boot", d.boot_id || "–"],
    ["uptime", t.uptime_s != null ? Math.round(t.uptime_s) + " s" : "–"],
    ["events", String(d.events)], ["CPU", fixed(t.cpu_percent) + " %"], ["RSS", fixed(t.rss_mb) + " MB"],
  ];
  $("dev-facts").replaceChildren(...facts.map(([k, v]) => el("div", { class: "fact" }, el("label", {}, k), el("span", {}, v))));
  const errs = (t.errors || []).concat(t.ota_error ? ["OTA: " + t.ota_error] : []);
  $("dev-errors").replaceChildren(...errs.map(x => el("li", {}, x)));
  const video = Object.entries(t.streams || {}).filter(([, s]) => s.kind !== "audio").map(([n]) => n);
  const sel = $("cmd-snapshot-stream");
  if (sel.options.length !== video.length + 1) {
    sel.replaceChildren(el("option", { value: "" }, "first video stream"), ...video.map(n => el("option", { value: n }, n)));
  }
}

function series(telemetry) {
  const video = {}, audio = {}, inf = {};
  const depth = { name: "outbox depth", points: [] }, drops = { name: "dropped", points: [] };
  for (const r of telemetry) {
    const t = Date.parse(r.ts) / 1000;
    for (const [name, s] of Object.entries(r.streams || {})) {
      const into = s.kind === "audio" ? audio : video;
      (into[name] ||= { name, points: [] }).points.push([t, s.fps]);
    }
    for (const [name, d] of Object.entries(r.detectors || {})) {
      if (d.inference_ms != null) (inf[name] ||= { name, points: [] }).points.push([t, d.inference_ms]);
    }
    if (r.outbox_depth != null) depth.points.push([t, r.outbox_depth]);
    if (r.dropped != null) drops.points.push([t, r.dropped]);
  }
  return { video: Object.values(video), audio: Object.values(audio), inf: Object.values(inf), outbox: [depth, drops] };
}

async function refresh() {
  if (!device) return;
  const id = encodeURIComponent(device);
  const hours = +$("dev-range").value || 1;
  const now = Date.now() / 1000, since = now - hours * 3600;
  const [d, tel, gaps, quar] = await Promise.all([
    api("/api/devices/" + id).catch(err => { if (err.status === 404) return null; throw err; }),
    api(`/api/devices/${id}/telemetry?since=${since}&limit=10000`),
    api("/api/gaps?device=" + id), api("/api/quarantine?limit=50&device=" + id),
  ]);
  if (d === null) {
    $("dev-missing").hidden = false; $("dev-body").hidden = true;
    return;
  }
  $("dev-missing").hidden = true; $("dev-body").hidden = false;
  status(d);
  models(d.telemetry);
  const s = series(tel.telemetry);
  lineChart($("dev-chart-video"), s.video, since, now, { empty: "no video stream" });
  lineChart($("dev-chart-audio"), s.audio, since, now, { empty: "no audio stream" });
  lineChart($("dev-chart-inf"), s.inf, since, now);
  lineChart($("dev-chart-outbox"), s.outbox, since, now);
  $("dev-gaps").querySelector("tbody").replaceChildren(...gapRows(gaps.gaps));
  $("dev-gaps-empty").hidden = gaps.gaps.length > 0;
  $("dev-quarantine").querySelector("tbody").replaceChildren(...quarantineRows(quar.quarantine));
  $("dev-quarantine-empty").hidden = quar.quarantine.length > 0;
  await refreshCommands();
}

function replyText(c) {
  if (!c.replied_at) return "waiting for the device…";
  const r = c.reply || {};
  return (c.ok ? "done" : "refused") + (r.message ? ": " + r.message : "");
}

async function refreshCommands() {
  const { commands } = await api(`/api/devices/${encodeURIComponent(device)}/commands`);
  $("dev-commands").querySelector("tbody").replaceChildren(...commands.slice(0, 10).map(c =>
    el("tr", { "data-command": c.id, class: c.ok === false ? "refused" : "" },
      el("td", {}, new Date(c.sent_at).toLocaleTimeString()), el("td", {}, c.name),
      el("td", { class: "reply" }, replyText(c)))));
}

// POST the command, then poll its reply; shows each step in `out`.
async function send(name, args, out) {
  const forDevice = device;
  out.className = "cmd-out pending";
  out.replaceChildren("sending…");
  let sent;
  try {
    sent = await apiPost(`/api/devices/${encodeURIComponent(forDevice)}/commands`, { name, args });
  } catch (err) {
    warn(err);
    out.className = "cmd-out refused";
    out.replaceChildren("not sent: " + err.message);
    return;
  }
  out.replaceChildren("sent; waiting for the device's reply…");
  const deadline = Date.now() + (REPLY_TIMEOUT_MS[name] || 30000);
  while (Date.now() < deadline) {
    await new Promise(r => setTimeout(r, POLL_MS));
    let commands;
    try {
      ({ commands } = await api(`/api/devices/${encodeURIComponent(forDevice)}/commands`));
    } catch (err) { warn(err); continue; }
    const c = commands.find(x => x.id === sent.id);
    if (!c || !c.replied_at) continue;
    showReply(c, out);
    refreshCommands().catch(warn);
    return;
  }
  out.className = "cmd-out refused";
  out.replaceChildren("no reply within " + (REPLY_TIMEOUT_MS[name] || 30000) / 1000 + " s (is the device online?)");
}

function showReply(c, out) {
  const r = c.reply || {};
  out.className = "cmd-out " + (c.ok ? "ok" : "refused");
  out.dataset.ok = String(c.ok);
  const kids = [el("div", { class: "reply-text" }, replyText(c))];
  const jpeg = r.result && r.result.jpeg_b64;
  if (jpeg && /^[A-Za-z0-9+/=]+$/.test(jpeg)) {
    kids.push(el("img", { class: "cmd-snapshot", alt: "snapshot from " + device, src: "data:image/jpeg;base64," + jpeg }));
  } else if (r.result) {
    kids.push(el("pre", {}, JSON.stringify(r.result, null, 2)));
  }
  out.replaceChildren(...kids);
}

function readFile(input, target) {
  input.addEventListener("change", async () => {
    const f = input.files && input.files[0];
    if (f) $(target).value = await f.text();
  });
}

export function init() {
  $("dev-range").addEventListener("change", () => refresh().catch(warn));
  readFile($("cmd-config-file"), "cmd-config-toml");
  readFile($("cmd-model-manifest-file"), "cmd-model-manifest");
  $("cmd-snapshot").addEventListener("submit", ev => {
    ev.preventDefault();
    const stream = $("cmd-snapshot-stream").value;
    send("snapshot", stream ? { stream } : {}, $("cmd-snapshot-out"));
  });
  $("cmd-config").addEventListener("submit", ev => {
    ev.preventDefault();
    send("config", { toml: $("cmd-config-toml").value }, $("cmd-config-out"));
  });
  $("cmd-model").addEventListener("submit", ev => {
    ev.preventDefault();
    const args = {};
    for (const k of ["detector", "url", "sha256", "manifest", "signature"]) args[k] = $("cmd-model-" + k).value.trim();
    send("model", args, $("cmd-model-out"));
  });
}

export async function show(id) {
  if (device !== id) {
    for (const o of document.querySelectorAll("#view-device .cmd-out")) { o.replaceChildren(); o.className = "cmd-out"; }
  }
  device = id;
  $("dev-title").textContent = id;
  await refresh();
  if (!timer) timer = setInterval(() => { if (!document.body.classList.contains("locked")) refresh().catch(warn); }, 5000);
}

export function hide() {
  if (timer) { clearInterval(timer); timer = null; }
  device = null;
}

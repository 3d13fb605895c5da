// The overview: devices, the live feed, zones and lines, charts, gaps, quarantine.
import { api, el, ago, fixed, rates, regionText, warn, Unauthorized } from "./core.js";
import { lineChart, barChart } from "./charts.js";

const FEED_MAX = 300;
let selected = null;
let feedCount = 0;

function telemetrySummary(t) {
  if (!t) return ["–", "–", "–"];
  const [video, audio] = rates(t);
  const det = Object.values(t.detectors || {});
  const inf = det.length ? det.reduce((a, d) => a + d.inference_ms, 0) / det.length : null;
  return [fixed(video), fixed(audio), fixed(inf)];
}

export async function refreshDevices() {
  const { devices } = await api("/api/devices");
  const body = document.querySelector("#devices tbody");
  body.replaceChildren();
  for (const d of devices) {
    const [video, audio, inf] = telemetrySummary(d.telemetry);
    const state = d.state;
    const link = el("a", { href: "#/device/" + encodeURIComponent(d.device_id), class: "devlink" }, d.device_id);
    const tr = el("tr", { "data-device": d.device_id, "data-state": state, class: state },
      el("td", {}, el("span", { class: "dot " + state, title: state })),
      el("td", { title: d.device_id }, link),
      el("td", { title: d.last_seen || "" }, ago(d.last_seen)),
      el("td", { class: "num fps-video" }, video), el("td", { class: "num fps-audio" }, audio),
      el("td", { class: "num" }, inf), el("td", { class: "num" }, String(d.events)));
    if (d.device_id === selected) tr.classList.add("sel");
    tr.onclick = ev => {
      if (ev.target.closest("a")) return;  // the link opens the device page
      selected = d.device_id; refreshDevices().catch(warn); refreshTelemetry().catch(warn);
    };
    body.append(tr);
  }
  document.getElementById("devices-empty").hidden = devices.length > 0;
  document.getElementById("kpi-devices").textContent = devices.length;
  document.getElementById("kpi-online").textContent = devices.filter(d => d.state === "online").length;
  if (!selected && devices.length) { selected = devices[0].device_id; refreshTelemetry().catch(warn); }
  renderRegions(devices.find(d => d.device_id === selected));
  return devices;
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

export function eventRow(e, fresh) {
  return el("tr", { "data-id": e.id, class: fresh ? "new" : "" },
    el("td", { title: e.ts }, new Date(e.ts).toLocaleTimeString()),
    el("td", {}, e.device_id),
    el("td", {}, el("span", { class: "tag" }, e.label)),
    el("td", {}, e.kind),
    el("td", { class: "num" }, e.score.toFixed(2)),
    el("td", { class: "phase-" + e.phase }, e.phase),
    el("td", { class: "zones" }, regionText(e)),
    el("td", { class: "num" }, String(e.seq)),
    el("td", { class: "num" }, e.latency_ms.toFixed(1)));
}

export function addEvent(e, fresh) {
  const body = document.querySelector("#feed tbody");
  const tr = eventRow(e, fresh);
  tr.onclick = () => { location.hash = "#/event/" + encodeURIComponent(e.id); };
  body.prepend(tr);
  while (body.children.length > FEED_MAX) body.lastChild.remove();
  feedCount += 1;
  document.getElementById("feed-count").textContent = feedCount + " received";
}

export async function loadFeed() {
  try {
    const { events } = await api("/api/events?limit=50");
    document.querySelector("#feed tbody").replaceChildren();
    for (const e of events.reverse()) addEvent(e, false);
  } catch (err) {
    if (err instanceof Unauthorized) return;
    console.warn(err);
  }
}

// The selected device's frames/s: video frames and audio chunks are different units, so
// they are separate lines (one per stream), never a sum.
export function streamSeries(telemetry) {
  const series = {};
  for (const r of telemetry) {
    const t = Date.parse(r.ts) / 1000;
    for (const [name, s] of Object.entries(r.streams || {})) {
      const key = name + (s.kind === "audio" ? " (chunks/s)" : " (frames/s)");
      (series[key] ||= { name: key, kind: s.kind, points: [] }).points.push([t, s.fps]);
    }
  }
  return Object.values(series);
}

async function refreshTelemetry() {
  if (!selected) return;
  const now = Date.now() / 1000, since = now - 3600;
  const { telemetry } = await api(`/api/devices/${encodeURIComponent(selected)}/telemetry?since=${since}`);
  document.getElementById("chart-device").textContent = selected;
  const t0 = telemetry.length ? Math.min(Date.parse(telemetry[0].ts) / 1000, now - 60) : now - 600;
  const pts = k => telemetry.filter(r => r[k] != null).map(r => [Date.parse(r.ts) / 1000, r[k]]);
  lineChart(document.getElementById("chart-fps"), streamSeries(telemetry), t0, now);
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

export function gapRows(gaps) {
  return gaps.map(g => el("tr", { "data-device": g.device_id },
    el("td", {}, g.device_id), el("td", { class: "num" }, String(g.from_seq)),
    el("td", { class: "num" }, String(g.to_seq)), el("td", { class: "num" }, String(g.missing)),
    el("td", {}, g.cause === "outbox_reset" ? "lost at the device (outbox reset)" : "in transit"),
    el("td", {}, g.after_ts ? new Date(g.after_ts).toLocaleString() : "")));
}

export function quarantineRows(quarantine) {
  return quarantine.map(q => el("tr", { "data-device": q.device_id || "" },
    el("td", {}, q.device_id || "?"), el("td", {}, q.reason), el("td", {}, q.detail),
    el("td", { class: "num" }, String(q.payload_bytes)), el("td", { class: "num" }, String(q.count)),
    el("td", {}, q.last_at ? new Date(q.last_at).toLocaleString() : "")));
}

async function refreshGaps() {
  const { gaps } = await api("/api/gaps");
  document.querySelector("#gaps tbody").replaceChildren(...gapRows(gaps));
  document.getElementById("gaps-empty").hidden = gaps.length > 0;
  document.getElementById("kpi-gaps").textContent = gaps.reduce((a, g) => a + g.missing, 0);
}

async function refreshQuarantine() {
  const { total, quarantine } = await api("/api/quarantine?limit=20");
  document.querySelector("#quarantine tbody").replaceChildren(...quarantineRows(quarantine));
  document.getElementById("quarantine-empty").hidden = quarantine.length > 0;
  document.getElementById("kpi-quarantine").textContent = total;
}

// [interval ms, refresh] pairs dashboard.js runs while logged in
export const POLLS = [
  [1000, refreshDevices], [5000, refreshTelemetry], [10000, refreshLabels],
  [5000, refreshGaps], [5000, refreshQuarantine],
];

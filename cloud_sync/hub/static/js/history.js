// Event history: filters (device, stream, label, zone, phase, from / to), pages through
// /api/events with its cursor ("older"), thumbnails, and live events over /api/stream
// with the same filter, when the range is open-ended.
import { api, el, regionText, snapshotImg, setConn, url, warn } from "./core.js";

const FIELDS = ["device", "stream", "label", "zone", "phase"];
const PAGE = 50;
let cursor = null;
let live = null;
let seen = new Set();
let current = "";

function toEpoch(local) {  // <input type=datetime-local> value → epoch seconds (local time)
  if (!local) return null;
  const t = Date.parse(local);
  return isNaN(t) ? null : t / 1000;
}

// The filter as URL query text (shared by the hash, /api/events and /api/stream).
export function filterFromForm() {
  const q = new URLSearchParams();
  for (const f of FIELDS) {
    const v = document.getElementById("f-" + f).value.trim();
    if (v) q.set(f, v);
  }
  const since = toEpoch(document.getElementById("f-from").value);
  const until = toEpoch(document.getElementById("f-to").value);
  if (since != null) q.set("since", String(since));
  if (until != null) q.set("until", String(until));
  return q;
}

function fillForm(q) {
  for (const f of FIELDS) document.getElementById("f-" + f).value = q.get(f) || "";
  const local = t => {
    if (!t) return "";
    const d = new Date(+t * 1000);
    const pad = n => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  };
  document.getElementById("f-from").value = local(q.get("since"));
  document.getElementById("f-to").value = local(q.get("until"));
}

function thumb(e) {
  // only events the device took pictures for: no request that is known to 404
  if (!e.snapshots || !e.snapshots.length) return el("span", { class: "nothumb" });
  return snapshotImg(e.id, "crop", "thumb");
}

function row(e, fresh) {
  const tr = el("tr", { "data-id": e.id, class: fresh ? "new" : "" },
    el("td", { class: "thumbcell" }, thumb(e)),
    el("td", { title: e.ts }, new Date(e.ts).toLocaleString()),
    el("td", {}, e.device_id), el("td", {}, e.stream),
    el("td", {}, el("span", { class: "tag" }, e.label)),
    el("td", { class: "num" }, e.score.toFixed(2)),
    el("td", { class: "phase-" + e.phase }, e.phase),
    el("td", { class: "zones" }, regionText(e)),
    el("td", { class: "num" }, String(e.seq)));
  tr.onclick = () => { location.hash = "#/event/" + encodeURIComponent(e.id); };
  return tr;
}

function setStatus(text, error) {
  const s = document.getElementById("history-status");
  s.textContent = text;
  s.classList.toggle("error", !!error);
}

async function loadPage(q, append) {
  const params = new URLSearchParams(q);
  params.set("limit", String(PAGE));
  if (append && cursor != null) params.set("cursor", String(cursor));
  let body;
  try {
    body = await api("/api/events?" + params);
  } catch (err) {
    warn(err);
    setStatus(err.message, true);
    return;
  }
  const tbody = document.querySelector("#history tbody");
  if (!append) { tbody.replaceChildren(); seen = new Set(); }
  for (const e of body.events) {
    if (seen.has(e.id)) continue;
    seen.add(e.id);
    tbody.append(row(e, false));
  }
  cursor = body.next_cursor;
  document.getElementById("history-older").hidden = cursor == null;
  document.getElementById("history-empty").hidden = tbody.children.length > 0;
  setStatus(tbody.children.length + " shown" + (cursor == null ? "" : ", more older"));
  document.getElementById("history").dataset.loaded = new URLSearchParams(q).toString();
}

function follow(q) {
  if (live) { live.close(); live = null; }
  if (q.get("until") && +q.get("until") * 1000 < Date.now()) return;  // a closed range
  const params = new URLSearchParams(q);
  params.delete("since"); params.delete("until");
  const es = new EventSource(url("/api/stream" + (params.toString() ? "?" + params : "")));
  live = es;
  const since = q.get("since"), upto = q.get("until");
  es.addEventListener("event", m => {
    const e = JSON.parse(m.data);
    const t = Date.parse(e.ts) / 1000;  // a late event can be older than the range
    if (seen.has(e.id) || (since && t < +since) || (upto && t >= +upto)) return;
    seen.add(e.id);
    document.querySelector("#history tbody").prepend(row(e, true));
    document.getElementById("history-empty").hidden = true;
  });
  es.onopen = () => setConn(true, "live");
  es.onerror = () => { if (es.readyState === EventSource.CLOSED) setConn(false, "history feed closed"); };
}

async function fillDevices() {
  const sel = document.getElementById("f-device");
  const keep = sel.value;
  try {
    const { devices } = await api("/api/devices");
    sel.replaceChildren(el("option", { value: "" }, "any device"),
      ...devices.map(d => el("option", { value: d.device_id }, d.device_id)));
    sel.value = keep;
  } catch (err) { warn(err); }
}

// Open the view with the filter in the hash (#/history?label=person&...).
export async function show(query) {
  const q = new URLSearchParams(query);
  await fillDevices();
  if (q.get("device") && ![...document.getElementById("f-device").options].some(o => o.value === q.get("device"))) {
    document.getElementById("f-device").append(el("option", { value: q.get("device") }, q.get("device")));
  }
  fillForm(q);
  const key = q.toString();
  if (key === current && live) return;
  current = key;
  cursor = null;
  await loadPage(q, false);
  follow(q);
}

export function hide() {
  if (live) { live.close(); live = null; }
  current = "";
}

export function init() {
  document.getElementById("filters").addEventListener("submit", ev => {
    ev.preventDefault();
    const q = filterFromForm().toString();
    const h = "#/history" + (q ? "?" + q : "");
    if (location.hash === h) { current = ""; show(q).catch(warn); } else location.hash = h;
  });
  document.getElementById("f-clear").addEventListener("click", () => { location.hash = "#/history"; });
  document.getElementById("history-older").addEventListener("click", () => {
    loadPage(new URLSearchParams(current), true).catch(warn);
  });
}

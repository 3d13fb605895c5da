// Shared by every view: the API (cookie session, CSRF header), DOM and format helpers.
export const PALETTE = ["#58a6ff", "#3fb950", "#d29922", "#f778ba", "#a371f7", "#39c5cf", "#ff7b72", "#e3b341"];
// every API call carries it: a cookie request that changes something needs it (CSRF)
export const CSRF = { "X-Edge-Hub-CSRF": "1" };
const colors = {};

export class Unauthorized extends Error {}

// The hub's root, from this page's own address (<root>/static/dashboard.html), so that
// behind a reverse proxy serving the hub under a path (https://example.org/edgewise/)
// every request stays under it. url("/api/x") is <root>api/x.
export const ROOT = new URL("../", document.baseURI);
export function url(path) {
  return new URL(path.replace(/^\/+/, ""), ROOT).href;
}

// set by dashboard.js: what to do when the hub says 401 (show the login form)
export const auth = { onUnauthorized: () => {} };

export function color(key) {
  if (!(key in colors)) colors[key] = PALETTE[Object.keys(colors).length % PALETTE.length];
  return colors[key];
}

async function check(path, r) {
  if (r.status === 401) {
    auth.onUnauthorized();
    throw new Unauthorized(path);
  }
  if (!r.ok) {
    let why = path + ": " + r.status;
    try { why = (await r.json()).error || why; } catch (_) { /* not JSON */ }
    const err = new Error(why);
    err.status = r.status;
    throw err;
  }
  return r.json();
}

export async function api(path) {
  const r = await fetch(url(path), { credentials: "same-origin", headers: CSRF });
  return check(path, r);
}

export async function apiPost(path, body) {
  const r = await fetch(url(path), {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", ...CSRF },
    body: JSON.stringify(body),
  });
  return check(path, r);
}

export function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("data-") || k === "title") e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k ?? ""));
  return e;
}

export function ago(iso) {
  if (!iso) return "never";
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return Math.round(s) + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " d ago";
}

export function fixed(v, digits = 1) {
  return typeof v === "number" && isFinite(v) ? v.toFixed(digits) : "–";
}

// What an event says about regions: the zone entered or left, the line crossed, or the
// zones the object is in.
export function regionText(e) {
  if (e.phase === "enter") return "→ " + e.zone;
  if (e.phase === "exit") return "← " + e.zone;
  if (e.phase === "cross") return e.line + " " + e.direction;
  return (e.zones || []).join(", ");
}

// The hub's snapshot route (GET /api/events/{id}/snapshot, image/jpeg, 404 when none).
export function snapshotUrl(id, kind) {
  return url(`/api/events/${encodeURIComponent(id)}/snapshot` + (kind ? `?kind=${kind}` : ""));
}

// An <img> that hides itself when the hub has no such picture.
export function snapshotImg(id, kind, cls) {
  const img = el("img", { class: cls, alt: "", loading: "lazy", decoding: "async" });
  img.addEventListener("error", () => { img.hidden = true; img.dataset.missing = "1"; });
  img.addEventListener("load", () => { img.dataset.loaded = "1"; });
  img.src = snapshotUrl(id, kind);
  return img;
}

// Streams of a telemetry message, video and audio apart: [video fps, audio chunks/s].
export function rates(t) {
  let video = null, audio = null;
  for (const s of Object.values((t && t.streams) || {})) {
    const fps = s.fps_processed ?? s.fps ?? 0;
    if (s.kind === "audio") audio = (audio || 0) + fps; else video = (video || 0) + fps;
  }
  return [video, audio];
}

export function setConn(ok, text) {
  document.getElementById("conn-dot").className = "dot " + (ok ? "online" : "offline");
  document.getElementById("conn-text").textContent = text;
}

export function warn(err) {
  if (!(err instanceof Unauthorized)) console.warn(err);
}

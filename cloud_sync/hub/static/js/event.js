// One event: its picture (the snapshot route) with the box drawn over it from the
// normalized box, its fields, and its track's timeline (start, updates, enter / exit /
// cross, end) from /api/events/{id}/track.
import { api, el, fixed, regionText, snapshotImg, warn } from "./core.js";

const FULL = ["start", "best"];

// Which picture to show, and whose box goes on it: the event's own full frame when the
// device took one, else the track's start frame, else its best frame (null: none).
export function pickPicture(e, track) {
  const has = (x, k) => (x.snapshots || []).includes(k);
  for (const k of FULL) if (has(e, k)) return { event: e, kind: k };
  for (const k of FULL) {
    const other = track.find(x => has(x, k));
    if (other) return { event: other, kind: k };
  }
  return null;
}

function boxDiv(box) {
  const [x1, y1, x2, y2] = box;
  const d = el("div", { class: "bbox" });
  Object.assign(d.style, {
    left: (x1 * 100) + "%", top: (y1 * 100) + "%",
    width: ((x2 - x1) * 100) + "%", height: ((y2 - y1) * 100) + "%",
  });
  return d;
}

function picture(e, track) {
  const pick = pickPicture(e, track);
  const wrap = el("div", { class: "picture", "data-kind": pick ? pick.kind : "none" });
  const boxed = pick ? pick.event : e;
  if (pick) {
    const img = snapshotImg(pick.event.id, pick.kind, "frame");
    img.addEventListener("error", () => { wrap.classList.add("blank"); });
    wrap.append(img);
  } else {
    wrap.classList.add("blank");
    wrap.append(el("p", { class: "sub noimg" }, "no snapshot for this track; the box on a blank frame"));
  }
  if (boxed.box) {
    const b = boxDiv(boxed.box);
    b.append(el("span", { class: "bbox-label" }, boxed.label + " " + boxed.score.toFixed(2)));
    wrap.append(b);
  }
  return wrap;
}

function fields(e) {
  const rows = [
    ["device", el("a", { href: "#/device/" + encodeURIComponent(e.device_id) }, e.device_id)],
    ["stream", e.stream], ["label", e.label], ["score", e.score.toFixed(3)], ["phase", e.phase],
    ["time", new Date(e.ts).toLocaleString()], ["started", new Date(e.started_at).toLocaleString()],
    ["track", e.track_id == null ? "–" : String(e.track_id)], ["seq", String(e.seq)],
    ["regions", regionText(e) || "–"],
    ["model", `${e.model.name} ${e.model.version} (${e.model.sha256})`],
    ["latency", fixed(e.latency_ms) + " ms"], ["snapshots", (e.snapshots || []).join(", ") || "none"],
    ["id", e.id],
  ];
  return el("table", { class: "fields" }, el("tbody", {}, ...rows.map(([k, v]) =>
    el("tr", {}, el("th", {}, k), el("td", { "data-field": k }, v)))));
}

function timeline(e, track, truncated) {
  const t0 = track.length ? Date.parse(track[0].ts) : 0;
  const items = track.map(x => {
    const li = el("li", { "data-id": x.id, "data-phase": x.phase, class: "phase-" + x.phase + (x.id === e.id ? " current" : "") },
      el("span", { class: "tl-time" }, "+" + ((Date.parse(x.ts) - t0) / 1000).toFixed(1) + " s"),
      el("span", { class: "tl-phase" }, x.phase),
      el("span", { class: "tl-what" }, regionText(x)),
      el("span", { class: "num" }, x.score.toFixed(2)));
    li.onclick = () => { location.hash = "#/event/" + encodeURIComponent(x.id); };
    return li;
  });
  const list = el("ol", { class: "timeline", id: "timeline" }, ...items);
  return truncated ? [list, el("p", { class: "sub" }, "only the first " + track.length + " events of this track")] : [list];
}

export async function show(id) {
  const root = document.getElementById("event-body");
  document.getElementById("event-title").textContent = "";
  root.replaceChildren(el("p", { class: "empty" }, "loading…"));
  let e, tr;
  try {
    [e, tr] = await Promise.all([
      api("/api/events/" + encodeURIComponent(id)),
      api("/api/events/" + encodeURIComponent(id) + "/track"),
    ]);
  } catch (err) {
    warn(err);
    root.replaceChildren(el("p", { class: "error", id: "event-error" }, err.status === 404 ? "No such event." : err.message));
    return;
  }
  document.getElementById("event-title").textContent = `${e.label} on ${e.device_id} / ${e.stream}`;
  root.replaceChildren(
    el("div", { class: "event-main" }, picture(e, tr.events), fields(e)),
    el("h2", {}, "Timeline ", el("span", { class: "sub" }, tr.events.length + " events of this track")),
    ...timeline(e, tr.events, tr.truncated));
}

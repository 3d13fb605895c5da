// Tiny SVG charts. A line breaks where samples are further apart than GAP_INTERVALS
// telemetry intervals (the device was down, or not running): no line drawn across a gap.
import { color } from "./core.js";

const SVGNS = "http://www.w3.org/2000/svg";
export const GAP_INTERVALS = 3;

export function svg(tag, attrs) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function timeLabel(t, span) {
  const opts = span > 86400 ? { month: "short", day: "numeric", hour: "2-digit" }
    : { hour: "2-digit", minute: "2-digit" };
  return new Date(t * 1000).toLocaleTimeString([], opts);
}

// The axes. The first time label is anchored at its start and the last at its end, so
// neither is cut off at the chart's edges.
export function frame(box, ymax, t0, t1) {
  const W = box.clientWidth || 500, H = box.clientHeight || 170, L = 38, R = 8, B = 18, T = 16;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}` });
  const x = t => L + (W - L - R) * (t - t0) / Math.max(1, t1 - t0);
  const y = v => T + (H - T - B) * (1 - v / ymax);
  for (let i = 0; i <= 3; i++) {
    const v = ymax * i / 3;
    root.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#222a33" }));
    const lab = svg("text", { x: L - 5, y: y(v) + 3, "text-anchor": "end" });
    lab.textContent = v >= 100 ? v.toFixed(0) : v.toFixed(1);
    root.append(lab);
  }
  const ticks = [[t0, "start"], [(t0 + t1) / 2, "middle"], [t1, "end"]];
  for (const [t, anchor] of ticks) {
    const lab = svg("text", { x: x(t), y: H - 4, "text-anchor": anchor, class: "axis-x" });
    lab.textContent = timeLabel(t, t1 - t0);
    root.append(lab);
  }
  return { root, x, y, W, H, L, T };
}

export function legend(f, names) {
  let off = f.L;
  for (const n of names) {
    f.root.append(svg("rect", { x: off, y: 2, width: 8, height: 8, fill: color(n), rx: 2 }));
    const t = svg("text", { x: off + 12, y: 10, class: "legend" });
    t.textContent = n; f.root.append(t); off += 20 + n.length * 6.5;
  }
}

// Points [[t, v], ...] sorted by t → runs with no gap wider than GAP_INTERVALS times the
// usual (median) spacing between samples.
export function segments(points, minGap = 0) {
  if (points.length < 2) return points.length ? [points] : [];
  const steps = points.slice(1).map((p, i) => p[0] - points[i][0]).sort((a, b) => a - b);
  const gap = Math.max(minGap, GAP_INTERVALS * steps[Math.floor(steps.length / 2)]);
  const out = [[points[0]]];
  for (let i = 1; i < points.length; i++) {
    if (points[i][0] - points[i - 1][0] > gap) out.push([]);
    out[out.length - 1].push(points[i]);
  }
  return out;
}

// series: [{name, points}]; opts.interval: the telemetry interval (s), when known.
export function lineChart(box, series, t0, t1, opts = {}) {
  const all = series.flatMap(s => s.points.map(p => p[1]));
  const ymax = Math.max(1, ...all) * 1.15;
  const f = frame(box, ymax, t0, t1);
  for (const s of series) {
    const runs = segments(s.points, opts.interval ? GAP_INTERVALS * opts.interval : 0);
    const d = runs.map(run => run.map((p, i) => (i ? "L" : "M") + f.x(p[0]).toFixed(1) + " " + f.y(p[1]).toFixed(1)).join("")).join("");
    if (!d) continue;
    const path = svg("path", { d, fill: "none", stroke: color(s.name), "stroke-width": 1.6, "data-series": s.name, "data-runs": runs.length });
    f.root.append(path);
    for (const run of runs) {  // a lone sample between two gaps is a dot, not nothing
      if (run.length === 1) f.root.append(svg("circle", { cx: f.x(run[0][0]), cy: f.y(run[0][1]), r: 2, fill: color(s.name) }));
    }
  }
  legend(f, series.map(s => s.name));
  if (!all.length) {
    const t = svg("text", { x: f.W / 2, y: f.H / 2, "text-anchor": "middle" });
    t.textContent = opts.empty || "no telemetry yet"; f.root.append(t);
  }
  box.replaceChildren(f.root);
}

export function barChart(box, counts, bucket, t0, t1) {
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

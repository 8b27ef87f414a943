// Line charts as plain SVG: x is the round, one line per series. Written here rather than
// vendored: a few axes and polylines are all the console draws.
import { esc } from "./dom.js";

export const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
  "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];
// beyond this many sites, each is a thin grey line and only the global one stands out
const MAX_COLOURED = PALETTE.length;
const W = 520, H = 260, M = { top: 16, right: 16, bottom: 36, left: 52 };

function niceTicks(min, max, count = 5) {
  const span = max - min || Math.abs(max) || 1;
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * power).find((s) => s >= raw);
  const ticks = [Number((Math.floor(min / step) * step).toFixed(10))];
  while (ticks[ticks.length - 1] < max) {  // the last tick is at or above the highest value
    ticks.push(Number((ticks[ticks.length - 1] + step).toFixed(10)));
  }
  if (ticks.length === 1) ticks.push(Number((ticks[0] + step).toFixed(10)));
  return ticks;
}

function label(value) {
  return Math.abs(value) >= 1000 || (value !== 0 && Math.abs(value) < 0.01)
    ? value.toExponential(1) : String(Number(value.toFixed(3)));
}

// series: [{name, points: [[round, value], ...], global?: true}]
export function lineChart(title, series, { xLabel = "round" } = {}) {
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return `<p class="muted">No ${esc(title)} reported yet.</p>`;
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  const xMin = Math.min(...xs), xMax = Math.max(...xs, xMin + 1);
  const yTicks = niceTicks(Math.min(...ys), Math.max(...ys));
  const yMin = yTicks[0], yMax = yTicks[yTicks.length - 1];
  const x = (v) => M.left + ((v - xMin) / (xMax - xMin)) * (W - M.left - M.right);
  const y = (v) => H - M.bottom - ((v - yMin) / (yMax - yMin || 1)) * (H - M.top - M.bottom);
  const xTicks = [];
  const xStep = Math.max(1, Math.ceil((xMax - xMin) / 10));
  for (let r = xMin; r <= xMax; r += xStep) xTicks.push(r);
  const grid = yTicks.map((t) => `<line class="grid" x1="${M.left}" x2="${W - M.right}"
      y1="${y(t)}" y2="${y(t)}"/><text class="tick" x="${M.left - 6}" y="${y(t) + 4}"
      text-anchor="end">${label(t)}</text>`).join("")
    + xTicks.map((r) => `<text class="tick" x="${x(r)}" y="${H - M.bottom + 16}"
      text-anchor="middle">${r + 1}</text>`).join("");
  const many = series.filter((s) => !s.global).length > MAX_COLOURED;
  let colour = 0;
  const lines = series.map((s) => {
    const stroke = s.global ? "#111" : many ? "#b8c2cc" : PALETTE[colour++ % PALETTE.length];
    s.stroke = stroke;
    const d = s.points.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("");
    const dots = s.points.map((p) => `<circle cx="${x(p[0]).toFixed(1)}" cy="${y(p[1]).toFixed(1)}"
      r="${s.global ? 3.5 : 2.5}" fill="${stroke}"><title>${esc(s.name)}, round ${p[0] + 1}: ${label(p[1])}</title></circle>`).join("");
    return `<g class="series${s.global ? " global" : ""}" data-series="${esc(s.name)}"
      data-points="${s.points.length}"><path d="${d}" stroke="${stroke}" fill="none"
      stroke-width="${s.global ? 3 : many ? 1 : 2}"${s.global ? ' stroke-dasharray="6 3"' : ""}/>${dots}</g>`;
  }).join("");
  const legend = series.filter((s) => s.global || !many).map((s) =>
    `<span class="key"><i class="swatch" data-colour="${s.stroke}"></i>${esc(s.name)}</span>`).join("")
    + (many ? `<span class="key muted">${series.length - 1} sites (grey)</span>` : "");
  return `<figure class="chart" data-metric="${esc(title)}" data-rounds="${new Set(xs).size}">
    <figcaption>${esc(title)}</figcaption>
    <svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)} by round">
      ${grid}<line class="axis" x1="${M.left}" x2="${W - M.right}" y1="${H - M.bottom}" y2="${H - M.bottom}"/>
      <text class="tick" x="${(W + M.left) / 2}" y="${H - 4}" text-anchor="middle">${esc(xLabel)}</text>
      ${lines}</svg><div class="legend">${legend}</div></figure>`;
}

// Legend swatches take their colour from a data attribute: the page allows no inline styles.
export function paintSwatches(root) {
  for (const swatch of root.querySelectorAll("i.swatch[data-colour]")) {
    swatch.style.backgroundColor = swatch.dataset.colour;
  }
}

// Small DOM helpers: escaping, ages that tick locally, rows updated in place.

export function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  })[c]);
}

export const enc = encodeURIComponent;
export const fedPath = (fed) => `/console/federations/${enc(fed)}`;
export const sitePath = (fed, site) => `${fedPath(fed)}/sites/${enc(site)}`;
export const jobPath = (fed, job) => `${fedPath(fed)}/jobs/${enc(job)}`;

export function jobState(status) {
  if (!status) return "unknown";
  if (status === "FINISHED:COMPLETED") return "up";
  if (status.startsWith("FINISHED") || status.startsWith("FAILED")) return "down";
  return "running";
}

export function link(href, text, cls = "") {
  return `<a href="${esc(href)}"${cls ? ` class="${cls}"` : ""}>${esc(text)}</a>`;
}

export function chip(state, text = state) {
  return `<span class="chip s-${esc(state || "unknown")}">${esc(text || "unknown")}</span>`;
}

// A timestamp shown as its age ("12 s ago"); the ticker keeps it current without a request.
export function age(ts) {
  if (!ts) return `<span class="muted">–</span>`;
  return `<time data-ts="${esc(ts)}" title="${esc(ts)}">${esc(ageText(ts))}</time>`;
}

export function ageText(ts) {
  const s = Math.round((Date.now() - Date.parse(ts)) / 1000);
  if (Number.isNaN(s)) return ts;
  if (s < 0) return "just now";
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function when(ts) {
  return ts ? `<time title="${esc(ts)}">${esc(ts.replace("T", " ").slice(0, 19))}</time>` : "–";
}

export function daysLeft(notAfter) {
  if (!notAfter) return null;
  return Math.floor((Date.parse(notAfter) - Date.now()) / 86400000);
}

// Days a certificate has left: the ledger's count when it gives one, else from its not_after.
export function certCell(notAfter, days) {
  days = days ?? daysLeft(notAfter);
  if (days === null) return `<span class="muted">–</span>`;
  const cls = days < 0 ? "s-down" : days < 30 ? "s-degraded" : "";
  return `<span class="${cls}" title="${esc(notAfter)}">${days} d</span>`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 90) return `${seconds.toFixed(1)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

export function startTicker() {
  setInterval(() => {
    for (const el of document.querySelectorAll("time[data-ts]")) {
      el.textContent = ageText(el.dataset.ts);
    }
  }, 1000);
}

// Sets a region's HTML only when it changed, so focus, scroll and selection survive updates.
export function put(el, html) {
  if (el && el.dataset.html !== html) {
    el.innerHTML = html;
    el.dataset.html = html;
  }
}

// Keeps one <tr data-key> per item, in order; a row is rewritten only when its HTML changed.
export function syncRows(tbody, items, keyOf, rowHtml) {
  const existing = new Map([...tbody.children].map((tr) => [tr.dataset.key, tr]));
  let previous = null;
  for (const item of items) {
    const key = String(keyOf(item));
    const html = rowHtml(item);
    let tr = existing.get(key);
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset.key = key;
    }
    existing.delete(key);
    if (tr.dataset.html !== html) {
      tr.innerHTML = html;
      tr.dataset.html = html;
    }
    const wanted = previous ? previous.nextSibling : tbody.firstChild;
    if (wanted !== tr) tbody.insertBefore(tr, wanted);
    previous = tr;
  }
  for (const tr of existing.values()) tr.remove();
}

export function table(id, headings, cls = "") {
  const ths = headings.map((h) => `<th>${esc(h)}</th>`).join("");
  return `<table class="grid ${cls}"><thead><tr>${ths}</tr></thead><tbody id="${id}"></tbody></table>`;
}

// The page's filter controls live in the URL's query, so a filtered view can be shared.
export function queryParam(name) {
  return new URLSearchParams(location.search).get(name) || "";
}

export function setQueryParam(name, value) {
  const params = new URLSearchParams(location.search);
  if (value) params.set(name, value); else params.delete(name);
  const query = params.toString();
  history.replaceState(null, "", location.pathname + (query ? `?${query}` : ""));
}

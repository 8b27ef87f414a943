// Alerts and the audit trail: newest first, filtered in the page (the filters live in the URL).
import {
  chip, duration, esc, fedPath, link, put, queryParam, setQueryParam, syncRows, table, when,
} from "./dom.js";

const ROWS = 1000;

// A list page: a choice per field named in `filters` ({field: label}), and free text.
function listPage({ path, section, title, source, affectedBy, headings, key, row, haystack,
                    filters }) {
  return {
    path, section, affectedBy,
    title: () => title,
    crumbs: () => [[null, title]],
    sources: () => [`${source}?limit=${ROWS}`],
    mount(main) {
      main.innerHTML = `<div class="toolbar" id="filters">
          ${Object.entries(filters).map(([f, label]) => `<label>${esc(label)} <select data-filter="${f}"></select></label>`).join("")}
          <input type="search" data-filter="q" placeholder="search" value="${esc(queryParam("q"))}">
          <span id="row-count" class="muted"></span></div>
        ${table("rows", headings)}`;
      let last = [];
      const controls = [...main.querySelectorAll("[data-filter]")];
      controls.forEach((c) => c.addEventListener("input", () => {
        setQueryParam(c.dataset.filter, c.value);
        draw();
      }));
      function draw() {
        for (const select of main.querySelectorAll("select[data-filter]")) {
          const f = select.dataset.filter;
          const wanted = queryParam(f);
          const values = [...new Set(last.map((r) => r[f]).filter(Boolean))].sort();
          if (wanted && !values.includes(wanted)) values.push(wanted);
          put(select, [`<option value="">all</option>`, ...values.map((v) =>
            `<option value="${esc(v)}"${v === wanted ? " selected" : ""}>${esc(v)}</option>`)].join(""));
        }
        const picked = Object.keys(filters).map((f) => [f, queryParam(f)]).filter(([, v]) => v);
        const words = queryParam("q").toLowerCase();
        const shown = last.filter((r) => picked.every(([f, v]) => r[f] === v)
          && (!words || haystack(r).toLowerCase().includes(words))).reverse();
        put(document.getElementById("row-count"), `${shown.length} of ${last.length}`);
        syncRows(document.getElementById("rows"), shown, key, row);
      }
      return { render(rows) { last = rows; draw(); } };
    },
  };
}

const rowKey = (r) => r.message_id || `${r.command_id}|${r.occurred_at}|${r.outcome_type}`;
const fedCell = (r) => (r.federation ? link(fedPath(r.federation), r.federation) : "");

export const ALERTS_PAGE = listPage({
  path: /^\/console\/alerts\/?$/, section: "alerts", title: "Alerts", source: "/alerts",
  affectedBy: (c) => c.type === "AlertRaised",
  headings: ["when", "severity", "rule", "federation", "site", "summary"],
  key: rowKey,
  filters: { federation: "federation", severity: "severity", rule: "rule" },
  haystack: (r) => `${r.rule} ${r.summary} ${r.site} ${r.federation}`,
  row: (r) => `<td>${when(r.occurred_at)}</td>
    <td>${chip({ critical: "down", warning: "degraded" }[r.severity] || "unknown", r.severity)}</td>
    <td>${esc(r.rule)}</td><td>${fedCell(r)}</td><td>${esc(r.site || "")}</td>
    <td class="summary-text">${esc(r.summary)}</td>`,
});

// who acted: the proven identity; a service acting inside someone's flow names them too; a
// refused command names what its signature proved and what it claimed
function actor(r) {
  if (r.claimed_by || r.proven_by) {
    return `${esc(r.proven_by || "no proof")} <span class="muted small">claimed ${esc(r.claimed_by || "–")}</span>`;
  }
  const behalf = r.on_behalf_of && r.on_behalf_of !== r.actor
    ? ` <span class="muted small">for ${esc(r.on_behalf_of)}</span>` : "";
  return `${esc(r.actor || r.issued_by || "")}${behalf}`;
}

function events(r) {
  const list = r.events || [];
  if (list.length === 0) return esc(r.outcome_type || "");
  return `<details><summary>${list.length} event${list.length > 1 ? "s" : ""}: ${esc(list[list.length - 1].type)}</summary>
    <ol class="events">${list.map((e) => `<li>${when(e.occurred_at)} ${esc(e.type)}
      ${e.reason ? `<span class="muted">${esc(e.reason)}</span>` : ""}${e.note ? ` <span class="muted">${esc(e.note)}</span>` : ""}</li>`).join("")}</ol></details>`;
}

export const AUDIT_PAGE = listPage({
  path: /^\/console\/audit\/?$/, section: "audit", title: "Audit trail", source: "/audit",
  affectedBy: (c) => !c.telemetry,
  headings: ["when", "federation", "command", "outcome", "by", "took", "reason", "events", "command id"],
  key: (r) => r.command_id || rowKey(r),
  filters: { federation: "federation", outcome: "outcome", command_type: "command", actor: "by" },
  haystack: (r) => `${r.command_type} ${r.outcome_type} ${r.actor} ${r.on_behalf_of} ${r.reason} ${r.command_id}`,
  row: (r) => `<td>${when(r.occurred_at)}</td><td>${fedCell(r)}</td>
    <td>${esc(r.command_type || "?")}${r.automatic ? ' <span class="muted small">automatic</span>' : ""}</td>
    <td>${chip({ succeeded: "up", failed: "down", rejected: "degraded" }[r.outcome] || "unknown", r.outcome)}</td>
    <td>${actor(r)}</td><td class="num">${r.took_s != null ? duration(r.took_s) : "–"}</td>
    <td class="summary-text">${esc(r.reason || "")}</td><td>${events(r)}</td>
    <td class="mono small">${esc(r.command_id)}</td>`,
});

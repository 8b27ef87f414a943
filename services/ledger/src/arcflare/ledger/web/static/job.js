// A job: its status timeline, a chart per metric (a line per site and the global one, round
// by round), final values and the registered model with its MLflow link.
import { lineChart, paintSwatches } from "./charts.js";
import { chip, duration, enc, esc, fedPath, jobState, put, when } from "./dom.js";

function timeline(history) {
  // a final state is reported twice (NVFlare's status, then the job's end): show it once
  history = history.filter((h, i) => i === 0 || h.status !== history[i - 1].status);
  return `<ol class="timeline">${history.map((h, i) => {
    const next = history[i + 1];
    const took = next ? (Date.parse(next.occurred_at) - Date.parse(h.occurred_at)) / 1000 : null;
    return `<li>${chip(jobState(h.status), h.status)}<div class="small">${when(h.occurred_at)}</div>
      ${took !== null ? `<div class="muted small">${duration(took)}</div>` : ""}</li>`;
  }).join("")}</ol>`;
}

function model(job, mlflow) {
  if (!job.model_version) {
    return `<p class="muted">No model registered yet.</p>`;
  }
  const name = `${esc(job.model_name)} version ${esc(job.model_version)}`;
  const href = mlflow
    ? `${mlflow.replace(/\/$/, "")}/#/models/${enc(job.model_name)}/versions/${enc(job.model_version)}`
    : null;
  return `<p id="model">Registered model ${href ? `<a href="${esc(href)}" rel="noreferrer">${name}</a>` : name}
    <span class="muted">· MLflow run <span class="mono">${esc(job.run_id || "")}</span></span></p>`;
}

function charts(series) {
  const keys = Object.keys(series.metrics).sort();
  if (keys.length === 0) return `<p class="muted">No metrics reported yet.</p>`;
  return keys.map((key) => {
    const m = series.metrics[key];
    const lines = Object.keys(m.sites).sort().map((site) => ({ name: site, points: m.sites[site] }));
    lines.push({ name: m.global_is_mean ? "global (mean of sites)" : "global", points: m.global,
                 global: true });
    return lineChart(key, lines);
  }).join("");
}

function finals(job) {
  const rows = job.final_metrics || [];
  if (rows.length === 0) return "";
  const keys = [...new Set(rows.map((r) => r.key))].sort();
  const sites = [...new Set(rows.map((r) => r.site))].sort();
  const value = (site, key) => rows.find((r) => r.site === site && r.key === key);
  return `<table class="grid compact"><thead><tr><th>site</th>${keys.map((k) => `<th>${esc(k)}</th>`).join("")}</tr></thead>
    <tbody>${sites.map((s) => `<tr><td>${esc(s)}</td>${keys.map((k) => {
      const v = value(s, k);
      return `<td class="num">${v ? `${Number(v.value.toFixed(4))} <span class="muted small">r${v.step + 1}</span>` : "–"}</td>`;
    }).join("")}</tr>`).join("")}</tbody></table>`;
}

export const JOB_PAGE = {
  path: /^\/console\/federations\/(?<fed>[^/]+)\/jobs\/(?<job>[^/]+)\/?$/,
  section: "federations",
  title: (p) => `job ${p.job.slice(0, 8)} · ${p.fed}`,
  crumbs: (p) => [["/console/", "Federations"], [fedPath(p.fed), p.fed], [null, `job ${p.job}`]],
  sources: (p) => [`/federations/${enc(p.fed)}/jobs/${enc(p.job)}`,
                   `/federations/${enc(p.fed)}/jobs/${enc(p.job)}/metrics`],
  affectedBy: (c, p) => c.federation === p.fed && c.job_id === p.job,
  mount(main, p, context) {
    main.innerHTML = `<section class="summary" id="job-head"></section>
      <section id="timeline"></section><section id="model-line"></section>
      <h2>Metrics by round</h2><div class="charts" id="charts"></div>
      <h2>Final values</h2><div id="finals"></div>`;
    return {
      render(job, series) {
        put(document.getElementById("job-head"), `<h1>${esc(job.name || "job")}
          <span class="mono small">${esc(job.job_id)}</span></h1>
          ${chip(jobState(job.status), job.status)}
          <span>${esc((job.sites || []).length)} sites · ${series.rounds}${job.rounds ? ` of ${esc(job.rounds)}` : ""} rounds reported</span>
          ${job.duration_s ? `<span>took ${duration(job.duration_s)}</span>` : ""}
          ${job.reason ? `<p class="diagnosis-full">${esc(job.reason)}</p>` : ""}`);
        put(document.getElementById("timeline"), timeline(job.history || []));
        put(document.getElementById("model-line"), model(job, context.mlflow_ui_url));
        const chartsEl = document.getElementById("charts");
        put(chartsEl, charts(series));
        paintSwatches(chartsEl);
        put(document.getElementById("finals"), finals(job));
      },
    };
  },
};

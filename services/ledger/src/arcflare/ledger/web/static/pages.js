// The pages: federations overview, one federation, one site. Each names the JSON it reads,
// which changes concern it, and renders into the main element.
import {
  age, certCell, chip, enc, esc, fedPath, jobPath, jobState, link, put, queryParam,
  setQueryParam, sitePath, syncRows, table, when,
} from "./dom.js";
import { JOB_PAGE } from "./job.js";
import { ALERTS_PAGE, AUDIT_PAGE } from "./records.js";

const SEVERITY = { down: 0, degraded: 1, unknown: 2, up: 3, removed: 4 };
const STATES = ["up", "degraded", "down", "unknown", "removed"];
const RECENT_JOBS = 25;

const OVERVIEW = {
  path: /^\/console\/?$/, section: "federations",
  title: () => "Federations",
  crumbs: () => [[null, "Federations"]],
  sources: () => ["/overview"],
  affectedBy: () => true,
  mount(main) {
    main.innerHTML = `<section class="summary" id="totals"></section>
      ${table("federations", ["federation", "state", "server", "sites", "up", "degraded",
        "down", "jobs running", "alerts (24 h)", "nearest cert expiry"])}`;
    return {
      render(federations) {
        const sum = (state) => federations.reduce((n, f) => n + f.sites[state], 0);
        put(document.getElementById("totals"), federations.length === 0
          ? `<p class="notice">No federation yet: create one with <code>arcflare federation create</code>.</p>`
          : `<span class="big">${federations.length}</span> federations ·
             <span class="big s-up">${sum("up")}</span> sites up ·
             <span class="big s-degraded">${sum("degraded")}</span> degraded ·
             <span class="big s-down">${sum("down")}</span> down`);
        syncRows(document.getElementById("federations"), federations, (f) => f.name, (f) => `
          <td>${link(fedPath(f.name), f.name, "strong")}</td>
          <td>${esc(f.lifecycle || "–")}</td>
          <td>${esc(f.server || "–")}${f.engine ? ` <span class="muted small">${esc(f.engine)}</span>` : ""}</td>
          <td class="num">${f.site_count}</td>
          ${["up", "degraded", "down"].map((s) =>
            `<td class="num${f.sites[s] ? ` s-${s}` : " muted"}">${f.sites[s]}</td>`).join("")}
          <td class="num">${f.jobs_running} / ${f.jobs_total}</td>
          <td class="num${f.alerts_24h ? " s-degraded" : ""}">${f.alerts_24h}</td>
          <td>${certCell(f.nearest_cert_expiry)}</td>`);
      },
    };
  },
};

function siteRow(fed, s) {
  const seen = s.last_connect_time ? ` <span class="muted small">${age(s.last_connect_time)}</span>` : "";
  return `
    <td>${link(sitePath(fed, s.site), s.site, "strong")}</td><td class="small">${esc(s.org || "")}</td>
    <td>${chip(s.state)} <span class="small">${esc(s.condition || s.health || "")}</span></td>
    <td class="diagnosis" title="${esc(s.diagnosis || "")}">${esc(s.diagnosis || "")}</td>
    <td>${age(s.last_heartbeat)}</td>
    <td>${esc(s.server_view || "–")}${seen}</td>
    <td>${esc(s.nvflare_version || "–")}</td>
    <td class="num">${certCell(s.cert_not_after, s.cert_days_left)}</td>
    <td>${s.current_job ? link(jobPath(fed, s.current_job), s.current_job.slice(0, 8), "mono") : ""}</td>`;
}

function jobRow(fed, j) {
  const model = j.model_version ? `${esc(j.model_name)} v${esc(j.model_version)}` : "";
  return `
    <td>${link(jobPath(fed, j.job_id), j.job_id.slice(0, 8), "mono")}</td>
    <td>${esc(j.name || "")}</td><td>${chip(jobState(j.status), j.status)}</td>
    <td>${when(j.submitted_at)}</td><td class="num">${j.rounds ?? "–"}</td>
    <td class="num">${j.duration_s ? `${j.duration_s.toFixed(0)} s` : "–"}</td><td>${model}</td>`;
}

const FEDERATION = {
  path: /^\/console\/federations\/(?<fed>[^/]+)\/?$/, section: "federations",
  title: (p) => p.fed,
  crumbs: (p) => [["/console/", "Federations"], [null, p.fed]],
  sources: (p) => [`/federations/${enc(p.fed)}`],
  affectedBy: (c, p) => c.federation === p.fed,
  mount(main, p) {
    main.innerHTML = `<section class="summary" id="fed-head"></section>
      <div class="toolbar"><input id="site-filter" type="search" placeholder="filter sites"
        value="${esc(queryParam("q"))}"><span id="state-filter" class="chips"></span>
        <span id="site-count" class="muted"></span></div>
      ${table("sites", ["site", "org", "health", "diagnosis", "last heartbeat", "server view",
        "NVFlare", "cert", "job"], "sites")}
      <h2>Jobs <span id="job-count" class="muted small"></span></h2>
      ${table("jobs", ["job", "name", "status", "submitted", "rounds", "duration", "model"])}
      <button id="all-jobs" class="more" hidden>show all jobs</button>`;
    let last = null;
    let state = queryParam("state");
    const filter = document.getElementById("site-filter");
    filter.addEventListener("input", () => { setQueryParam("q", filter.value); draw(); });
    document.getElementById("state-filter").addEventListener("click", (event) => {
      const picked = event.target.dataset?.state;
      if (picked === undefined) return;
      state = state === picked ? "" : picked;
      setQueryParam("state", state);
      draw();
    });
    function draw() {
      if (!last) return;
      const sites = last.sites || [];
      const counts = Object.fromEntries(STATES.map((s) => [s, 0]));
      sites.forEach((s) => { counts[s.state] += 1; });
      put(document.getElementById("state-filter"), STATES.filter((s) => counts[s]).map((s) =>
        `<button class="chip s-${s}${state === s ? " picked" : ""}" data-state="${s}">${counts[s]} ${s}</button>`).join(""));
      const words = filter.value.trim().toLowerCase();
      const shown = sites.filter((s) => (!state || s.state === state) && (!words ||
        `${s.site} ${s.org} ${s.health} ${s.diagnosis}`.toLowerCase().includes(words)))
        .sort((a, b) => SEVERITY[a.state] - SEVERITY[b.state] || a.site.localeCompare(b.site));
      put(document.getElementById("site-count"), `${shown.length} of ${sites.length} sites`);
      syncRows(document.getElementById("sites"), shown, (s) => s.site, (s) => siteRow(p.fed, s));
    }
    // the newest jobs first; older ones on request, so the sites stay in view
    let allJobs = false;
    const more = document.getElementById("all-jobs");
    more.addEventListener("click", () => { allJobs = true; drawJobs(); });
    function drawJobs() {
      const jobs = [...(last.jobs || [])].reverse();
      const shown = allJobs ? jobs : jobs.slice(0, RECENT_JOBS);
      more.hidden = shown.length === jobs.length;
      more.textContent = `show all ${jobs.length} jobs`;
      put(document.getElementById("job-count"), jobs.length > shown.length
        ? `newest ${shown.length} of ${jobs.length}` : `${jobs.length}`);
      syncRows(document.getElementById("jobs"), shown, (j) => j.job_id, (j) => jobRow(p.fed, j));
    }
    return {
      render(fed) {
        last = fed;
        const server = fed.server || {};
        put(document.getElementById("fed-head"), `<h1>${esc(fed.name)}</h1>
          <span>${chip(fed.lifecycle === "running" ? "up" : "unknown", fed.lifecycle || "not provisioned")}</span>
          <span>server ${chip(server.state, server.health || "not observed")}
            <span class="small">${esc(server.endpoint || "")}</span></span>
          <span>${server.registered ?? "–"} of ${server.expected ?? "–"} sites registered${server.observed_at ? `, seen ${age(server.observed_at)}` : ""}</span>
          <span>server cert ${certCell(server.cert_not_after, server.cert_days_left)} · CA ${certCell(fed.ca?.not_after, fed.ca?.days_left)}</span>
          <p class="diagnosis-full">${esc(server.diagnosis || "")}</p>`);
        draw();
        drawJobs();
      },
    };
  },
};

const SITE = {
  path: /^\/console\/federations\/(?<fed>[^/]+)\/sites\/(?<site>[^/]+)\/?$/,
  section: "federations",
  title: (p) => `${p.site} · ${p.fed}`,
  crumbs: (p) => [["/console/", "Federations"], [fedPath(p.fed), p.fed], [null, p.site]],
  sources: (p) => [`/federations/${enc(p.fed)}/sites/${enc(p.site)}`,
                   `/federations/${enc(p.fed)}/sites/${enc(p.site)}/logs?limit=10`],
  affectedBy: (c, p) => c.federation === p.fed && (!c.site || c.site === p.site),
  mount(main) {
    main.innerHTML = `<section class="summary" id="site-head"></section>
      <dl class="facts" id="site-facts"></dl>
      <div class="columns"><section><h2>Health history</h2>
        ${table("history", ["when", "status", "was", "diagnosis"])}</section>
      <section><h2>Recent log tails <span class="muted small">(redacted by the site's agent)</span></h2>
        <div id="tails"></div></section></div>`;
    return {
      render(site, tails) {
        put(document.getElementById("site-head"), `<h1>${esc(site.site)}</h1>
          ${chip(site.state)} <span>${esc(site.condition || site.health || "no health reported")}</span>
          ${site.diagnosis_code ? `<span class="mono small">${esc(site.diagnosis_code)}</span>` : ""}
          <p class="diagnosis-full">${esc(site.diagnosis || "")}</p>`);
        const facts = [["organisation", esc(site.org || "–")],
          ["lifecycle", esc(site.lifecycle || "–")], ["last heartbeat", age(site.last_heartbeat)],
          ["server view", esc(site.server_view || "–")],
          ["last connect", age(site.last_connect_time)],
          ["NVFlare", esc(site.nvflare_version || "–")], ["process", esc(site.pid ?? "–")],
          ["certificate", certCell(site.cert_not_after, site.cert_days_left)],
          ["current job", site.current_job ? link(jobPath(site.federation, site.current_job),
            site.current_job, "mono") : "–"]];
        put(document.getElementById("site-facts"),
          facts.map(([k, v]) => `<div><dt>${k}</dt><dd>${v}</dd></div>`).join(""));
        syncRows(document.getElementById("history"), site.health_history || [],
          (h) => `${h.occurred_at}|${h.status}`, (h) => `<td>${when(h.occurred_at)}</td>
            <td>${chip(h.status === "connected" ? "up" : ["crashed", "stopped"].includes(h.status) ? "down" : "degraded", h.status)}</td>
            <td>${esc(h.previous || "")}</td><td>${esc(h.diagnosis || "")}</td>`);
        put(document.getElementById("tails"), tails.length === 0
          ? `<p class="muted">No log tail yet: <code>arcflare logs ${esc(site.federation)} ${esc(site.site)}</code> asks the agent for one.</p>`
          : [...tails].reverse().map((t) => `<article class="tail"><header>${esc(t.file)} · ${when(t.occurred_at)}
              ${t.redacted_count ? ` · ${t.redacted_count} redacted` : ""}${t.truncated ? " · truncated" : ""}</header>
              <pre>${esc((t.lines || []).join("\n"))}</pre></article>`).join(""));
      },
    };
  },
};

export const PAGES = [OVERVIEW, FEDERATION, SITE, JOB_PAGE, ALERTS_PAGE, AUDIT_PAGE];

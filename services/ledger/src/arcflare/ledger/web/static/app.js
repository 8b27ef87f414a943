// The console: picks the page for the URL, reads its JSON, renders it, and re-reads when the
// ledger says (Server-Sent Events on /live) that something the page shows has changed.
import { esc, put, startTicker } from "./dom.js";
import { PAGES } from "./pages.js";

const main = document.getElementById("page");
const crumbs = document.getElementById("crumbs");
const liveBadge = document.getElementById("live");

function route() {
  for (const page of PAGES) {
    const match = location.pathname.match(page.path);
    if (match) return { page, params: Object.fromEntries(
      Object.entries(match.groups || {}).map(([k, v]) => [k, decodeURIComponent(v)])) };
  }
  return null;
}

export class Unreadable extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

export async function getJson(path) {
  const answer = await fetch(path, { headers: { Accept: "application/json" },
                                     credentials: "same-origin" });
  const body = await answer.json().catch(() => ({}));
  if (!answer.ok) throw new Unreadable(answer.status, body.error || answer.statusText);
  return body;
}

// One read in flight at a time; changes arriving meanwhile ask for exactly one more.
class Refresher {
  constructor(run) { this.run = run; this.busy = false; this.again = false; }
  async request() {
    if (this.busy) { this.again = true; return; }
    this.busy = true;
    try {
      do { this.again = false; await this.run(); } while (this.again);
    } finally { this.busy = false; }
  }
}

function showProblem(error) {
  const signIn = error.status === 401
    ? " Run <code>arcflare console --open</code> on a machine with your identity to sign in."
    : "";
  put(main, `<p class="notice" id="problem">${esc(error.message)}.${signIn}</p>`);
}

async function boot() {
  startTicker();
  if (document.getElementById("signed-out")) return;  // the server said why already
  const found = route();
  if (!found) { showProblem(new Error(`no console page at ${location.pathname}`)); return; }
  const { page, params } = found;
  document.querySelectorAll("nav.sections a").forEach((a) =>
    a.classList.toggle("current", a.dataset.section === page.section));
  // who reads, and the page's first data, in parallel: the page needs both to show anything
  const first = Promise.all(page.sources(params).map(getJson));
  first.catch(() => {});  // reported below, once
  let context;
  try {
    context = await getJson("/whoami");
  } catch (error) { showProblem(error); return; }
  document.getElementById("who").textContent = context.reader;
  document.title = `${page.title(params)} · ArcFlare`;
  crumbs.innerHTML = page.crumbs(params).map(([href, text]) =>
    href ? `<a href="${esc(href)}">${esc(text)}</a>` : `<span>${esc(text)}</span>`).join(" › ");
  const view = page.mount(main, params, context);
  let pending = first;
  const refresher = new Refresher(async () => {
    try {
      const reads = pending || Promise.all(page.sources(params).map(getJson));
      pending = null;
      const data = await reads;
      view.render(...data);
      if (!main.dataset.rendered) {  // User Timing: when the page first showed its data
        requestAnimationFrame(() => performance.mark("arcflare:rendered"));
      }
      main.dataset.rendered = String(Date.now());
    } catch (error) { showProblem(error); }
  });
  await refresher.request();
  follow((changes) => {
    if (changes === null || changes.some((c) => page.affectedBy(c, params))) refresher.request();
  });
}

// Listens to /live; `onChanges(list)` for each batch, `onChanges(null)` when some were lost
// (after a reconnect, or a browser that fell behind), so the page re-reads everything.
function follow(onChanges) {
  const source = new EventSource("/live");
  let dropped = false;
  const badge = (state, text) => { liveBadge.dataset.state = state; liveBadge.textContent = text; };
  source.addEventListener("hello", () => {
    badge("live", "live");
    if (dropped) onChanges(null);
    dropped = false;
  });
  source.addEventListener("changes", (event) => onChanges(JSON.parse(event.data)));
  source.addEventListener("resync", () => onChanges(null));
  source.onerror = () => { dropped = true; badge("down", "reconnecting…"); };
}

boot();

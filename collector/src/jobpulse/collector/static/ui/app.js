// jobpulse web interface: jobs and one job's page, drawn from the collector's JSON API with the session
// cookie. No framework and no build step; uPlot (window.uPlot) draws the charts. Every value shown from the
// API goes through text nodes or esc(), never raw HTML.

const main = document.getElementById("main");
const WIDE = 8; // more nodes than this: a min / median / max band instead of one line per node
const REFRESH_S = 15; // a running job's page is read again this often
let me = null;
let timer = null;

const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

class HttpError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

async function api(path, opts = {}) {
  const resp = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" }, ...opts });
  if (resp.status === 401) { me = null; showLogin(); throw new HttpError(401, "not logged in"); }
  const text = await resp.text();
  const body = text ? (() => { try { return JSON.parse(text); } catch { return text; } })() : null;
  if (!resp.ok) throw new HttpError(resp.status, (body && body.detail) || text || resp.statusText);
  return body;
}

// -- formatting --------------------------------------------------------------------------------------------
const BYTES = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
function human(v, unit) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (unit === "B" || unit === "B/s") {
    let i = 0; while (Math.abs(v) >= 1024 && i < BYTES.length - 1) { v /= 1024; i++; }
    return `${i ? v.toFixed(1) : v.toFixed(0)} ${BYTES[i]}${unit === "B/s" ? "/s" : ""}`;
  }
  return `${Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2)}${unit ? " " + unit : ""}`;
}
function duration(s) {
  if (!s && s !== 0) return "–";
  s = Math.round(s); const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  return (d ? `${d}d ` : "") + `${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}
const when = (t) => (t ? new Date(t * 1000).toLocaleString() : "–");
function bar(frac, kind) {
  if (frac === null || frac === undefined || !Number.isFinite(frac)) return '<span class="muted">–</span>';
  const pct = Math.max(0, Math.min(100, frac * 100));
  const cls = kind === "mem" ? (pct >= 90 ? "bad" : "ok") : pct < 25 ? "bad" : pct < 50 ? "warn" : "ok";
  return `<span class="bar" title="${pct.toFixed(0)} %"><i class="${cls}" style="width:${pct}%"></i></span> ${pct.toFixed(0)} %`;
}

// -- login, identity ---------------------------------------------------------------------------------------
function showLogin(message) {
  clearInterval(timer);
  document.getElementById("who").textContent = "";
  document.getElementById("nav").innerHTML = "";
  main.innerHTML = `<form class="login card" id="login">
      <h2>Sign in to jobpulse</h2>
      <label>User <input name="user" autocomplete="username" required></label>
      <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
      <button type="submit">Sign in</button>
      <a href="/auth/oauth/login" id="oidc" hidden>Sign in with your organisation</a>
      <p class="error" id="login-error">${esc(message || "")}</p></form>`;
  fetch("/auth/oauth/login", { redirect: "manual", credentials: "omit" }).then((r) => {
    if (r.type === "opaqueredirect" || r.status === 302 || r.status === 307) document.getElementById("oidc").hidden = false;
  }).catch(() => {});
  document.getElementById("login").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    const resp = await fetch("/api/login", { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ Username: f.get("user"), Password: f.get("password") }) });
    if (!resp.ok) { document.getElementById("login-error").textContent = resp.status === 429 ? "Too many attempts, wait a minute." : "Wrong user or password."; return; }
    await start();
  });
}

async function start() {
  try { me = await api("/api/auth/me"); } catch { return; }
  const who = document.getElementById("who");
  who.innerHTML = `${esc(me.Username)} <span class="muted">(${esc(me.Roles.join(", "))})</span> <button id="logout">Sign out</button>`;
  document.getElementById("logout").onclick = async () => { await fetch("/api/logout", { method: "POST", credentials: "same-origin" }); showLogin(); };
  document.getElementById("nav").innerHTML = `<a href="#/jobs">Jobs</a><a href="#/jobs?IsRunning=true">Running</a><a href="/docs">API</a>`;
  route();
}

function route() {
  clearInterval(timer);
  if (!me) return;
  const [path, query] = (location.hash.slice(1) || "/jobs").split("?");
  const job = path.match(/^\/job\/([0-9_+]+)$/);
  const view = job ? jobPage(job[1]) : jobsPage(new URLSearchParams(query || ""));
  view.catch((e) => { if (e.status !== 401) main.innerHTML = `<p class="error">${esc(e.message)}</p>`; });
}
window.addEventListener("hashchange", route);

// -- the job list ------------------------------------------------------------------------------------------
const FILTERS = [["UserName", "User"], ["Account", "Account"], ["Partition", "Partition"], ["Node", "Node"], ["Findings", "Finding"]];
const PAGE = 50;

function figure(job, guid) {
  const d = (job.Data || []).find((x) => x.Config.GUID === guid);
  if (!d) return null;
  const scale = d.Config.MaxPerNode || d.Config.MaxPerType;
  return scale ? { mean: d.Mean / scale, max: d.Max / scale } : null;
}

async function jobsPage(params) {
  const q = new URLSearchParams(params);
  if (!q.has("limit")) q.set("limit", PAGE);
  if (!q.has("sort")) q.set("sort", "StartTime");
  const body = await api(`/api/jobs?${q}`);
  const offset = Number(q.get("offset") || 0);
  const state = q.get("IsRunning");
  main.innerHTML = `<form class="filters card" id="filters">
      ${FILTERS.map(([k, label]) => `<label>${label}<input name="${k}" value="${esc(q.get(k) || "")}"></label>`).join("")}
      <label>State<select name="IsRunning"><option value="">all</option><option value="true" ${state === "true" ? "selected" : ""}>running</option><option value="false" ${state === "false" ? "selected" : ""}>finished</option></select></label>
      <button type="submit">Show</button></form>
    <table id="jobs"><thead><tr>
      <th data-sort="JobId">Job</th><th>Name</th><th>User</th><th>Account</th><th>Partition</th><th data-sort="NumNodes">Nodes</th>
      <th data-sort="StartTime">Start</th><th data-sort="Duration">Run time</th><th>State</th><th>CPU</th><th>Memory peak</th><th>Findings</th>
    </tr></thead><tbody></tbody></table>
    <div class="pager"><button id="prev" ${offset ? "" : "disabled"}>‹ Newer</button>
      <span class="muted">${body.Total ? `${offset + 1}–${offset + body.Jobs.length} of ${body.Total}` : "No jobs match."}</span>
      <button id="next" ${offset + body.Jobs.length < body.Total ? "" : "disabled"}>Older ›</button></div>`;
  const rows = body.Jobs.map((j) => {
    const cpu = figure(j, "cpu_cores"), mem = figure(j, "mem_peak_bytes") || figure(j, "mem_current_bytes");
    const findings = (j.Tags || []).filter((t) => t.Type === "finding").map((t) => `<span class="badge">${esc(t.Name)}</span>`).join("");
    const run = j.IsRunning ? (Date.now() / 1000 - j.StartTime) : (j.StopTime - j.StartTime);
    return `<tr class="job" data-id="${esc(j.JobIdString || j.Id)}"><td>${esc(j.JobIdString || j.Id)}</td><td>${esc(j.JobName)}</td><td>${esc(j.UserName)}</td>
      <td>${esc(j.Account)}</td><td>${esc(j.Partition)}</td><td>${esc(j.NumNodes)}</td><td>${when(j.StartTime)}</td><td>${duration(run)}</td>
      <td>${j.IsRunning ? '<span class="badge running">running</span>' : esc(j.State || "")}</td>
      <td>${j.IsRunning ? "" : bar(cpu && cpu.mean, "cpu")}</td><td>${j.IsRunning ? "" : bar(mem && mem.max, "mem")}</td><td>${findings}</td></tr>`;
  });
  main.querySelector("#jobs tbody").innerHTML = rows.join("");
  main.querySelectorAll("tr.job").forEach((tr) => (tr.onclick = () => (location.hash = `#/job/${tr.dataset.id}`)));
  main.querySelectorAll("th[data-sort]").forEach((th) => (th.onclick = () => {
    const n = new URLSearchParams(q); const same = n.get("sort") === th.dataset.sort;
    n.set("sort", th.dataset.sort); n.set("order", same && n.get("order") !== "asc" ? "asc" : "desc"); n.delete("offset");
    location.hash = `#/jobs?${n}`;
  }));
  const go = (o) => { const n = new URLSearchParams(q); n.set("offset", Math.max(0, o)); location.hash = `#/jobs?${n}`; };
  document.getElementById("prev").onclick = () => go(offset - PAGE);
  document.getElementById("next").onclick = () => go(offset + PAGE);
  document.getElementById("filters").onsubmit = (ev) => {
    ev.preventDefault();
    const n = new URLSearchParams();
    for (const [k, v] of new FormData(ev.target)) if (v) n.set(k, v);
    location.hash = `#/jobs?${n}`;
  };
}

// -- one job ----------------------------------------------------------------------------------------------
function seriesOf(metric) {
  // GET /ui/api/job/{id} sends each metric as columns: times, and per node its values at those times
  const nodes = Object.keys(metric.nodes);
  return { nodes, times: metric.times, values: nodes.map((n) => metric.nodes[n]) };
}

function band(values, times) {
  // min, median, max over nodes at each time step
  const out = [[], [], []];
  for (let i = 0; i < times.length; i++) {
    const at = values.map((c) => c[i]).filter((v) => v !== null).sort((a, b) => a - b);
    out[0].push(at.length ? at[0] : null);
    out[1].push(at.length ? at[Math.floor(at.length / 2)] : null);
    out[2].push(at.length ? at[at.length - 1] : null);
  }
  return out;
}

// what people look at first: use against allocation, then memory, GPUs, I/O; the rest after, by name
const ORDER = ["cpu_cores", "mem_current_bytes", "mem_peak_bytes", "mem_anon_bytes", "gpu_util_percent", "gpu_mem_bytes",
  "gpu_power_watts", "io_read_bytes", "io_write_bytes", "oom_kills", "alloc_cpus"];
const COLOURS = ["#1864ab", "#d9480f", "#2f9e44", "#862e9c", "#e8a317", "#0b7285", "#c2255c", "#5c940d"];

function chart(el, metric, width) {
  const { nodes, times, values } = seriesOf(metric);
  if (!times.length) return false;
  const unit = metric.Unit || "";
  const fmt = (u, v) => human(v, unit);
  let data, series;
  if (nodes.length > WIDE) {
    const [lo, mid, hi] = band(values, times);
    data = [times, lo, mid, hi];
    series = [{}, { label: "min", stroke: "#74c0fc" }, { label: "median", stroke: "#1864ab", width: 2 }, { label: "max", stroke: "#74c0fc" }];
  } else {
    data = [times, ...values];
    series = [{}, ...nodes.map((n, i) => ({ label: n, stroke: COLOURS[i % COLOURS.length], value: fmt }))];
  }
  const limit = metric.MaxPerNode;
  if (limit && /^mem_|^cpu_cores$|^gpu_util/.test(metric.GUID)) {
    data.push(times.map(() => limit));
    series.push({ label: "given", stroke: "#868e96", dash: [6, 4], value: fmt });
  }
  const opts = { width, height: 220, series, axes: [{}, { values: (u, ticks) => ticks.map((v) => human(v, unit)), size: 86 }],
    bands: nodes.length > WIDE ? [{ series: [3, 1], fill: "rgba(116,192,252,0.25)" }] : [] };
  new window.uPlot(opts, data, el);
  return true;
}

async function jobPage(id) {
  clearInterval(timer);
  const page = await api(`/ui/api/job/${encodeURIComponent(id)}`);
  const m = page.Metadata, s = page.Summary;
  const run = m.IsRunning ? Date.now() / 1000 - m.StartTime : m.StopTime - m.StartTime;
  const nodes = (m.Nodes || []).map((n) => n.Name);
  main.innerHTML = `<div class="card"><h2>Job ${esc(m.JobIdString || m.Id)} <span class="muted">${esc(m.JobName)}</span>
      ${m.IsRunning ? '<span class="badge running">running</span>' : ""}</h2>
    <dl class="head">
      <dt>User</dt><dd>${esc(m.UserName)} (${esc(m.GroupName || "–")})</dd><dt>Account</dt><dd>${esc(m.Account || "–")}</dd><dt>Cluster / partition</dt><dd>${esc(m.ClusterId)} / ${esc(m.Partition)}</dd>
      <dt>State</dt><dd>${esc(m.State || (m.IsRunning ? "RUNNING" : ""))}${m.IsRunning ? "" : ` (exit ${esc(m.ExitCode)})`}</dd><dt>Start</dt><dd>${when(m.StartTime)}</dd><dt>Run time</dt><dd>${duration(run)}</dd>
      <dt>Nodes</dt><dd title="${esc(nodes.join(" "))}">${nodes.length} (${esc(m.HostList || nodes.join(","))})</dd><dt>Cores</dt><dd>${esc(m.Cpus || "–")}</dd><dt>GPUs per node</dt><dd>${esc(m.GPUsPerNode)}</dd>
      ${s ? `<dt>CPU efficiency</dt><dd>${bar(s.cpu_efficiency, "cpu")}</dd><dt>Memory peak</dt><dd>${human(s.mem_peak_bytes, "B")} of ${human(s.mem_limit_bytes || s.mem_requested_bytes, "B")}</dd><dt>GPU utilisation</dt><dd>${s.gpu_util_mean_percent === null ? "–" : human(s.gpu_util_mean_percent, "%")}</dd>` : ""}
    </dl>
    <p><a href="/api/job/${encodeURIComponent(id)}?format=csv" download>Download CSV</a>
      ${m.IsRunning ? `<span class="muted"> · updates every ${REFRESH_S} s</span>` : ""}</p></div>
    <div id="notes"></div><div class="charts" id="charts"></div><div id="steps"></div>`;
  const notes = page.Findings || [];
  document.getElementById("notes").innerHTML = notes.length
    ? `<div class="card"><h3>What to change</h3>${notes.map((f) => `<div class="note"><b>${esc(f.rule)}</b>: ${esc(f.hint)}</div>`).join("")}</div>`
    : "";
  const charts = document.getElementById("charts");
  const width = Math.max(480, Math.min(660, charts.clientWidth / 2 - 24));
  const rank = (m) => { const i = ORDER.indexOf(m.GUID); return i < 0 ? ORDER.length : i; };
  const metrics = [...(page.Series || [])].sort((a, b) => rank(a) - rank(b));
  for (const metric of metrics) {
    const box = document.createElement("div");
    box.className = "chart card";
    box.innerHTML = `<h3>${esc(metric.DisplayName)}</h3>`;
    charts.appendChild(box);
    if (!chart(box, metric, width)) box.remove();
  }
  if (!charts.children.length) charts.innerHTML = '<p class="muted">No samples for this job.</p>';
  performance.mark("jobpulse:job-drawn"); // bench/web_page.py times the page to here
  const steps = page.Steps || [];
  if (steps.length) {
    const cell = (c, v) => (v === null || v === undefined ? "–" : /Bytes$/.test(c) ? human(v, "B")
      : /Sample$/.test(c) ? new Date(v * 1000).toLocaleTimeString() : c === "CpuSeconds" ? duration(v) : esc(v));
    const cols = Object.keys(steps[0]);
    document.getElementById("steps").innerHTML = `<div class="card"><h3>Steps</h3><table><thead><tr>${cols.map((c) => `<th>${esc(c)}</th>`).join("")}</tr></thead>
      <tbody>${steps.map((st) => `<tr>${cols.map((c) => `<td>${cell(c, st[c])}</td>`).join("")}</tr>`).join("")}</tbody></table></div>`;
  }
  if (m.IsRunning) timer = setInterval(() => { if (location.hash === `#/job/${id}`) jobPage(id).catch(() => {}); }, REFRESH_S * 1000);
}

start();

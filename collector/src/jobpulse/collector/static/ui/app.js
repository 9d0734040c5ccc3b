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
    if (r.type !== "opaqueredirect" && r.status !== 302 && r.status !== 307) return;
    const link = document.getElementById("oidc"); // back to this very page (a job, a filter) once signed in
    link.href = "/auth/oauth/login?redirect_to=" + encodeURIComponent(location.pathname + location.search + location.hash);
    link.hidden = false;
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
  const admin = me.Roles.includes("admin") ? '<a href="#/admin">Admin</a>' : "";
  document.getElementById("nav").innerHTML = `<a href="#/jobs">Jobs</a><a href="#/jobs?IsRunning=true">Running</a><a href="#/usage">Usage</a>${admin}<a href="/docs">API</a>`;
  route();
}

function route() {
  clearInterval(timer);
  if (live) { live.onerror = null; live.close(); live = null; }
  if (!me) return;
  const [path, query] = (location.hash.slice(1) || "/jobs").split("?");
  const job = path.match(/^\/job\/([0-9_+]+)$/);
  const params = new URLSearchParams(query || "");
  const view = job ? jobPage(job[1]) : path === "/admin" ? adminPage(params)
    : path === "/usage" ? usagePage(params) : jobsPage(params);
  view.catch((e) => { if (e.status !== 401) main.innerHTML = `<p class="error">${esc(e.message)}</p>`; });
}
window.addEventListener("hashchange", route);

// -- the job list ------------------------------------------------------------------------------------------
const FILTERS = [["UserName", "User"], ["Account", "Account"], ["Partition", "Partition"], ["Node", "Node"], ["Findings", "Finding"], ["TagNames", "Tag"]];
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
  if (!times.length) return null;
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
  return { plot: new window.uPlot(opts, data, el), data, nodes, wide: nodes.length > WIDE };
}

function drawTags(jobId, tags) {
  // a job's tags: findings (jobpulse's, not removable here) and people's; add and remove with the tag API
  const box = document.getElementById("tags");
  box.innerHTML = `<b>Tags</b> ${tags.map((t, i) => `<span class="badge" data-i="${i}">${esc(t.Name)}${t.Type === "finding" ? "" : ' <a href="#" class="untag" title="remove">×</a>'}</span>`).join("")}
    <form id="addtag" style="display:inline"><input name="tag" placeholder="new tag" maxlength="64" size="12"> <button type="submit">Add</button></form>
    <span class="error" id="tag-error"></span>`;
  const refresh = async () => drawTags(jobId, (await api(`/ui/api/job/${jobId}`)).Metadata.Tags || []);
  box.querySelectorAll("a.untag").forEach((a) => (a.onclick = async (ev) => {
    ev.preventDefault();
    const tag = tags[Number(a.closest(".badge").dataset.i)];
    await api(`/api/tags/remove_tag?job=${jobId}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(tag) });
    await refresh();
  }));
  document.getElementById("addtag").onsubmit = async (ev) => {
    ev.preventDefault();
    const name = String(new FormData(ev.target).get("tag") || "").trim();
    if (!name) return;
    try {
      await api(`/api/tags/add_tag?job=${jobId}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ Name: name }) });
      await refresh();
    } catch (e) { document.getElementById("tag-error").textContent = e.message; }
  };
}

let live = null; // the running job page's WebSocket

function liveUpdates(id, drawnCharts) {
  // new samples pushed by the collector (WS /api/live/{id}/raw, a ws-ticket from the session) are appended to
  // the charts drawn a line per node; wide jobs' bands, and a page whose socket fails, are re-read instead
  const label = document.getElementById("live");
  const poll = (why) => {
    label.textContent = ` · ${why}: updated every ${REFRESH_S} s`;
    timer = setInterval(() => { if (location.hash === `#/job/${id}`) jobPage(id).catch(() => {}); }, REFRESH_S * 1000);
  };
  if (Object.values(drawnCharts).some((c) => c.wide)) { poll("a wide job"); return; }
  api("/api/auth/ws-ticket", { method: "POST" }).then((ticket) => {
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/live/${encodeURIComponent(id)}/raw?token=${encodeURIComponent(ticket.token)}`);
    live = ws;
    let received = 0;
    ws.onopen = () => { label.textContent = " · live"; };
    ws.onmessage = (ev) => {
      const frame = JSON.parse(ev.data);
      if (frame.type === "end") { ws.close(); jobPage(id).catch(() => {}); return; }
      if (frame.type !== "sample") return;
      received += 1;
      for (const [guid, c] of Object.entries(drawnCharts)) {
        const value = frame.values[guid];
        if (value === undefined || value === null) continue;
        const col = c.nodes.indexOf(frame.node);
        if (col < 0) continue;
        c.data[0].push(frame.ts / 1000);
        c.data.slice(1).forEach((series, i) => series.push(i === col ? value : (i >= c.nodes.length ? series[series.length - 1] : null)));
        c.plot.setData(c.data);
      }
      label.textContent = ` · live: ${received} new sample${received === 1 ? "" : "s"}`;
    };
    ws.onerror = () => { if (live === ws) poll("no live connection"); };
  }).catch(() => poll("no live connection"));
}

async function jobPage(id) {
  clearInterval(timer);
  if (live) { live.onerror = null; live.close(); live = null; }
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
      ${m.IsRunning ? '<span class="muted" id="live"> · connecting to live updates…</span>' : ""}</p></div>
    <div class="card" id="tags"></div><div id="notes"></div><div class="charts" id="charts"></div><div id="steps"></div>`;
  drawTags(m.Id, page.Metadata.Tags || []);
  const notes = page.Findings || [];
  document.getElementById("notes").innerHTML = notes.length
    ? `<div class="card"><h3>What to change</h3>${notes.map((f) => `<div class="note"><b>${esc(f.rule)}</b>: ${esc(f.hint)}</div>`).join("")}</div>`
    : "";
  const charts = document.getElementById("charts");
  const drawnCharts = {};
  const width = Math.max(480, Math.min(660, charts.clientWidth / 2 - 24));
  const rank = (m) => { const i = ORDER.indexOf(m.GUID); return i < 0 ? ORDER.length : i; };
  const metrics = [...(page.Series || [])].sort((a, b) => rank(a) - rank(b));
  for (const metric of metrics) {
    const box = document.createElement("div");
    box.className = "chart card";
    box.innerHTML = `<h3>${esc(metric.DisplayName)}</h3>`;
    charts.appendChild(box);
    const drawn = chart(box, metric, width);
    if (drawn) drawnCharts[metric.GUID] = drawn; else box.remove();
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
  if (m.IsRunning) liveUpdates(id, drawnCharts);
}

// -- usage: per user or account over time (GET /ui/api/usage; a user's answer holds only their own jobs) -------
const RANGES = [["4w", "Last 4 weeks", 28], ["3m", "Last 3 months", 91], ["12m", "Last 12 months", 365], ["custom", "Custom dates", 0]];
const OTHERS_COLOUR = "#adb5bd";
const isoDay = (d) => d.toISOString().slice(0, 10);
const hours = (v) => (v === null || v === undefined ? "–" : v >= 100 ? v.toFixed(0) : v.toFixed(1));

function usageWindow(params) {
  // the window the page asks for: a preset counted back from today (UTC days, as the usage rollup's), or custom dates
  const range = params.get("range") || "4w";
  const preset = RANGES.find((r) => r[0] === range && r[2]);
  if (!preset) return { range: "custom", since: params.get("since") || "", until: params.get("until") || "" };
  const today = new Date();
  const since = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - preset[2] + 1));
  return { range, since: isoDay(since), until: isoDay(today) };
}

function stackedChart(el, body, figure, title, width) {
  // stacked bars: each bar is drawn from 0 to the sum of its own and the series below it, the top of the stack
  // first, so each shows as its own band; the legend shows each series' own hours, not the sum
  const n = body.periods.length, raw = body.series.map((s) => s[figure]);
  if (!raw.some((v) => v.some((x) => x > 0))) return null;
  const sums = []; let acc = new Array(n).fill(0);
  for (const values of raw) { acc = acc.map((a, i) => a + values[i]); sums.push(acc); }
  const order = raw.map((_, i) => raw.length - 1 - i); // top of the stack first
  const label = (i) => (body.group === "week" ? `week of ${body.periods[i]}` : body.periods[i].slice(0, 7));
  const colour = (i) => (body.series[i].key === "(others)" ? OTHERS_COLOUR : COLOURS[i % COLOURS.length]);
  const series = [{ label: body.group === "week" ? "Week" : "Month", value: (u, v) => (v === null || v === undefined ? "–" : label(v)) },
    ...order.map((i) => ({ label: body.series[i].key, stroke: colour(i), fill: colour(i), width: 0,
      paths: window.uPlot.paths.bars({ size: [0.7, 60] }), points: { show: false },
      value: (u, v, si, idx) => (idx === null || idx === undefined ? "–" : hours(raw[i][idx])) }))];
  const idx = body.periods.map((_, i) => i);
  const step = Math.max(1, Math.ceil(n / 12));
  const tick = (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1));
  const opts = { width, height: 280, series, legend: { live: true }, cursor: { y: false, points: { show: false } },
    scales: { x: { time: false, range: () => [-0.5, n - 0.5] }, y: { range: (u, lo, hi) => [0, hi > 0 ? hi * 1.05 : 1] } },
    axes: [{ splits: () => idx.filter((i) => i % step === 0), values: (u, ticks) => ticks.map((t) => (body.group === "week" ? body.periods[t].slice(5) : body.periods[t].slice(0, 7))) },
      { label: title, values: (u, ticks) => ticks.map(tick), size: 60 }] };
  return new window.uPlot(opts, [idx, ...order.map((i) => sums[i])], el);
}

async function usagePage(params) {
  const win = usageWindow(params);
  const admin = me.Roles.includes("admin");
  const q = new URLSearchParams({ group: params.get("group") || (win.range === "12m" ? "month" : "week"), by: params.get("by") || "user" });
  if (win.since) q.set("since", win.since);
  if (win.until) q.set("until", win.until);
  for (const k of ["cluster", "partition", "account", "user"]) if (params.get(k)) q.set(k, params.get(k));
  let body;
  try { body = await api(`/ui/api/usage?${q}`); } catch (e) {
    if (e.status !== 400) throw e; // a date or choice the collector refuses: say which, and offer a way back
    main.innerHTML = `<p class="error" id="usage-error">${esc(e.message)}</p><p><a href="#/usage">Back to the last 4 weeks</a></p>`;
    return;
  }
  const by = body.by, f = body.filters, t = body.totals;
  const pick = (name, label, values, current) => `<label>${label}<select name="${name}"><option value="">any</option>
    ${[...new Set([...(values || []), ...(current ? [current] : [])])].map((v) => `<option ${v === current ? "selected" : ""}>${esc(v)}</option>`).join("")}</select></label>`;
  main.innerHTML = `<form class="filters card" id="usage-form">
      <label>Period<select name="range">${RANGES.map(([k, l]) => `<option value="${k}" ${k === win.range ? "selected" : ""}>${l}</option>`).join("")}</select></label>
      <label>From<input type="date" name="since" value="${esc(body.since)}" ${win.range === "custom" ? "" : "disabled"}></label>
      <label>To<input type="date" name="until" value="${esc(body.until)}" ${win.range === "custom" ? "" : "disabled"}></label>
      <label>Per<select name="group"><option value="week" ${body.group === "week" ? "selected" : ""}>week</option><option value="month" ${body.group === "month" ? "selected" : ""}>month</option></select></label>
      <label>Breakdown<select name="by"><option value="user" ${by === "user" ? "selected" : ""}>by user</option><option value="account" ${by === "account" ? "selected" : ""}>by account</option></select></label>
      ${pick("cluster", "Cluster", body.clusters, f.cluster)}${pick("partition", "Partition", body.options.partitions, f.partition)}
      ${pick("account", "Account", body.options.accounts, f.account)}${admin ? pick("user", "User", body.options.users, f.user) : ""}
      <button type="submit">Show</button></form>
    <p id="usage-summary">${body.only_user ? `Your own usage (${esc(body.only_user)}): ` : "Everyone's usage: "}
      <b>${t.jobs}</b> job${t.jobs === 1 ? "" : "s"}, <b>${hours(t.cpu_hours)}</b> CPU-hours${t.gpu_hours ? `, <b>${hours(t.gpu_hours)}</b> GPU-hours` : ""}${body.only_user ? "" : `, ${t.users} user${t.users === 1 ? "" : "s"}`},
      submitted ${esc(body.since)} to ${esc(body.until)}.</p>
    <div id="usage-charts"></div>
    <table id="usage-table"><thead><tr><th>${by === "user" ? "User" : "Account"}</th>${by === "account" ? "<th>Users</th>" : ""}<th>Jobs</th><th>CPU-hours</th><th>GPU-hours</th>
      <th>Mean wait</th><th>Monitored jobs</th><th>CPU efficiency</th><th>Memory peak of given</th></tr></thead><tbody>
      ${body.rows.map((r) => `<tr class="usage-row" data-key="${esc(r.key)}"><td>${esc(r.key || "(none)")}</td>${by === "account" ? `<td>${r.users}</td>` : ""}<td>${r.jobs}</td>
        <td>${hours(r.cpu_hours)}</td><td>${hours(r.gpu_hours)}</td><td>${duration(r.wait_mean_s)}</td><td>${r.monitored_jobs || '<span class="muted">none</span>'}</td>
        <td>${r.monitored_jobs ? bar(r.cpu_efficiency, "cpu") : ""}</td><td>${r.monitored_jobs ? bar(r.mem_efficiency, "mem") : ""}</td></tr>`).join("")}
    </tbody></table>
    ${body.rows.length ? `<p class="muted">Click ${by === "user" ? "a user to list their" : "an account to list its"} monitored jobs.${body.rows_left_out ? ` ${body.rows_left_out} more with less usage are not listed.` : ""}</p>` : '<p class="muted">No usage recorded for this choice.</p>'}`;
  const form = document.getElementById("usage-form");
  form.range.onchange = () => { const custom = form.range.value === "custom"; form.since.disabled = form.until.disabled = !custom;
    if (!custom) form.group.value = form.range.value === "12m" ? "month" : "week"; };
  form.onsubmit = (ev) => {
    ev.preventDefault();
    const n = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) n.set(k, v);
    location.hash = `#/usage?${n}`;
  };
  main.querySelectorAll("tr.usage-row").forEach((tr) => (tr.onclick = () => {
    location.hash = `#/jobs?${new URLSearchParams({ [by === "user" ? "UserName" : "Account"]: tr.dataset.key })}`;
  }));
  const charts = document.getElementById("usage-charts");
  const width = Math.max(480, Math.min(1300, charts.clientWidth - 34));
  for (const [figure, title] of [["cpu_hours", "CPU-hours"], ["gpu_hours", "GPU-hours"]]) {
    const box = document.createElement("div");
    box.className = "chart card";
    box.dataset.figure = figure;
    box.innerHTML = `<h3>${title} per ${body.group}, ${by === "user" ? "by user" : "by account"}</h3>`;
    charts.appendChild(box);
    const drawn = stackedChart(box, body, figure, title, width);
    if (!drawn) box.remove();
  }
}

// -- administration (admins; the API refuses everyone else whatever the page shows) -------------------------
let livelog = null;
let newSecret = ""; // a key just created: shown on the next draw of the keys tab only
const ADMIN_TABS = [["nodes", "Nodes"], ["keys", "API keys"], ["requests", "Role requests"], ["users", "Users and roles"], ["audit", "Audit log"], ["log", "Live log"]];

async function adminPage(params) {
  if (livelog) { livelog.close(); livelog = null; }
  if (!me.Roles.includes("admin")) { main.innerHTML = '<p class="error">Administration is for admins only.</p>'; return; }
  const tab = params.get("tab") || "nodes";
  main.innerHTML = `<nav class="tabs">${ADMIN_TABS.map(([t, label]) => `<a href="#/admin?tab=${t}" class="${t === tab ? "on" : ""}">${label}</a>`).join("")}</nav><div id="admin"></div>`;
  const box = document.getElementById("admin");
  const when2 = (t) => (t ? new Date(t * 1000).toLocaleString() : "–");
  if (tab === "nodes") {
    const nodes = await api("/ui/api/nodes");
    const down = nodes.filter((n) => n.state === "down").length;
    box.innerHTML = `<p>${nodes.length} node(s), <b class="${down ? "error" : ""}">${down} down</b> (silent longer than the collector's node_down_after).</p>
      <table id="nodes"><thead><tr><th>Node</th><th>State</th><th>Cluster</th><th>CPUs</th><th>Memory</th><th>Agent</th><th>Last heard</th><th>Booted</th></tr></thead><tbody>
      ${nodes.map((n) => `<tr data-node="${esc(n.node)}"><td>${esc(n.node)}</td><td>${n.state === "up" ? '<span class="badge running">up</span>' : '<span class="badge">down</span>'}</td>
        <td>${esc(n.cluster || "–")}</td><td>${esc(n.cpus || "–")}</td><td>${human(n.memory_bytes, "B")}</td><td>${esc(n.agent_version || "–")}</td>
        <td>${duration(n.silent_seconds)} ago</td><td>${when2(n.boot_time)}</td></tr>`).join("")}</tbody></table>`;
  } else if (tab === "keys") {
    const keys = await api("/api/admin/apikeys");
    setTimeout(() => { newSecret = ""; }, 0);
    box.innerHTML = `<form class="filters card" id="newkey">
        <label>Role<select name="role"><option>job-control</option><option>user</option><option>admin</option></select></label>
        <label>Owner (user) or service<input name="owner" placeholder="alice, or service:slurm-hooks"></label>
        <label>Name<input name="name" placeholder="what it is for"></label>
        <label>Expires in days<input name="days" type="number" min="1"></label><button type="submit">Create key</button></form>
      <p id="newkey-out">${newSecret ? `New key (shown once, copy it now): <code id="secret">${esc(newSecret)}</code>` : ""}</p>
      <table><thead><tr><th>Id</th><th>Owner</th><th>Role</th><th>Name</th><th>Created</th><th>Expires</th><th>Last used</th><th>State</th><th></th></tr></thead><tbody>
      ${keys.map((k) => `<tr data-key="${esc(k.id)}"><td>${esc(k.id)}</td><td>${esc(k.owner)}</td><td>${esc(k.role)}</td><td>${esc(k.name)}</td><td>${when2(k.created)}</td>
        <td>${when2(k.expires)}</td><td>${when2(k.last_used)}</td><td>${k.revoked ? "revoked" : "active"}</td>
        <td>${k.revoked ? "" : '<button class="revoke">Revoke</button>'}</td></tr>`).join("")}</tbody></table>`;
    box.querySelectorAll("button.revoke").forEach((b) => (b.onclick = async () => {
      const id = b.closest("tr").dataset.key;
      if (!confirm(`Revoke key ${id}? Scripts using it stop working at once.`)) return;
      await api(`/api/admin/apikeys/${encodeURIComponent(id)}`, { method: "DELETE" });
      route();
    }));
    document.getElementById("newkey").onsubmit = async (ev) => {
      ev.preventDefault();
      const f = new FormData(ev.target), owner = String(f.get("owner") || "");
      const body = { role: f.get("role"), name: f.get("name") || "" };
      if (owner.startsWith("service:")) body.service = owner.slice(8); else if (owner) body.owner = owner;
      if (f.get("days")) body.expires_days = Number(f.get("days"));
      try {
        const made = await api("/api/generateAPIKey", { method: "POST", headers: { Accept: "application/json", "Content-Type": "application/json" }, body: JSON.stringify(body) });
        newSecret = made.key;
        route(); // the list with the new key, and its secret above it, once
      } catch (e) { document.getElementById("newkey-out").innerHTML = `<span class="error">${esc(e.message)}</span>`; }
    };
  } else if (tab === "requests") {
    const reqs = await api("/api/admin/notifications?all=true");
    box.innerHTML = reqs.length ? `<table><thead><tr><th>When</th><th>User</th><th>Asks for</th><th>From</th><th>State</th><th></th></tr></thead><tbody>
      ${reqs.map((r) => `<tr data-req="${r.id}" data-user="${esc(r.username)}" data-roles="${esc(r.roles.join(","))}"><td>${when2(r.ts)}</td><td>${esc(r.username)}</td>
        <td>${esc(r.roles.join(", "))}</td><td>${esc(r.client)}</td><td>${r.resolved ? "handled " + when2(r.resolved) : "pending"}</td>
        <td>${r.resolved ? "" : '<button class="grant">Grant</button> <button class="dismiss">Dismiss</button>'}</td></tr>`).join("")}</tbody></table>` : '<p class="muted">No role requests.</p>';
    box.querySelectorAll("button.grant").forEach((b) => (b.onclick = async () => {
      const tr = b.closest("tr"), user = tr.dataset.user;
      const now = await api(`/api/config/users/${encodeURIComponent(user)}`);
      const roles = [...new Set([...(now.Roles || []), ...tr.dataset.roles.split(",")])];
      // setting a user's roles marks their pending requests handled (the API does it)
      await api(`/api/config/users/${encodeURIComponent(user)}`, { method: "PATCH", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ Username: user, Roles: roles }) });
      route();
    }));
    box.querySelectorAll("button.dismiss").forEach((b) => (b.onclick = async () => { await api(`/api/admin/notifications/${b.closest("tr").dataset.req}`, { method: "DELETE" }); route(); }));
  } else if (tab === "users") {
    box.innerHTML = `<form class="filters card" id="finduser"><label>User<input name="user" value="${esc(params.get("user") || "")}" required></label><button type="submit">Show</button></form><div id="userbox"></div>`;
    document.getElementById("finduser").onsubmit = (ev) => { ev.preventDefault(); location.hash = `#/admin?tab=users&user=${encodeURIComponent(new FormData(ev.target).get("user"))}`; };
    const user = params.get("user");
    if (user) {
      const u = await api(`/api/config/users/${encodeURIComponent(user)}`);
      const has = new Set(u.Roles || []);
      document.getElementById("userbox").innerHTML = `<form class="card" id="roles"><h3>${esc(u.Username)}</h3>
        ${["user", "admin", "job-control"].map((r) => `<label><input type="checkbox" name="role" value="${r}" ${has.has(r) ? "checked" : ""}> ${r}</label>`).join(" ")}
        <button type="submit">Save roles</button> <span id="roles-out"></span></form>`;
      document.getElementById("roles").onsubmit = async (ev) => {
        ev.preventDefault();
        const roles = new FormData(ev.target).getAll("role");
        try {
          await api(`/api/config/users/${encodeURIComponent(user)}`, { method: "PATCH", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ Username: user, Roles: roles }) });
          document.getElementById("roles-out").textContent = "Saved.";
        } catch (e) { document.getElementById("roles-out").innerHTML = `<span class="error">${esc(e.message)}</span>`; }
      };
    }
  } else if (tab === "audit") {
    const offset = Number(params.get("offset") || 0);
    const rows = await api(`/api/admin/audit?limit=50&offset=${offset}`);
    box.innerHTML = `<table id="audit"><thead><tr><th>When</th><th>Who</th><th>Action</th><th>Target</th><th>Detail</th></tr></thead><tbody>
      ${rows.map((a) => `<tr><td>${when2(a.ts)}</td><td>${esc(a.actor)}</td><td>${esc(a.action)}</td><td>${esc(a.target)}</td><td>${esc(a.detail === null ? "" : JSON.stringify(a.detail))}</td></tr>`).join("")}</tbody></table>
      <div class="pager"><a href="#/admin?tab=audit&offset=${Math.max(0, offset - 50)}">‹ Newer</a> <a href="#/admin?tab=audit&offset=${offset + 50}">Older ›</a></div>`;
  } else if (tab === "log") {
    box.innerHTML = '<pre id="livelog" class="card" style="height:60vh;overflow:auto;white-space:pre-wrap"></pre>';
    const ticket = await api("/api/auth/ws-ticket", { method: "POST" });
    const out = document.getElementById("livelog");
    livelog = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/admin/livelog?token=${encodeURIComponent(ticket.token)}`);
    livelog.onmessage = (ev) => { out.textContent += ev.data.endsWith("\n") ? ev.data : ev.data + "\n"; out.scrollTop = out.scrollHeight; };
    livelog.onclose = () => { out.textContent += "(closed)\n"; };
  }
}

start();

/* horde web UI. Plain JavaScript, no build step; charts with plotly.js served from the plotly package.
 * Data: window.templateArgs (first paint), then the server-sent events of ./api/events: one "history"
 * event with every chart point the server keeps, then one "tick" a second (status, stats table, points). */
"use strict";
(function () {
  const args = window.templateArgs || {};
  const $ = (id) => document.getElementById(id);
  const TABS = ["stats", "charts", "failures", "exceptions", "ratios", "reports", "logViewer", "workers"];
  const PCT_COLORS = ["#ff9f00", "#9966cc", "#8a2be2", "#e0457b", "#2ab0c5", "#7a9a01", "#c8553d", "#5470c6", "#888"];
  const AGG = "Aggregated";
  const MARKER_COLORS = { start: "#1f8a5b", edit: "#d98a1c", stop: "#d64545", reset: "#888888" };

  let state = args.state || "ready";
  let lastStatus = null;
  let lastStats = null;
  let showingNewForm = false;
  let points = [];      // chart points {t, users, rps, fps, p: {"0.5": ms}}
  let markers = [];     // {t, label, kind}
  let historyId = null; // the server's history generation: a new test starts a new one
  let chartsDirty = true;
  let logsSeen = 0;
  let alertsSeen = null;  // warnings and errors seen when the Logs tab was last open
  let sort = { key: null, dir: 0 };
  const chartPercentiles = (args.chart_percentiles || [0.5, 0.66, 0.75, 0.8, 0.9, 0.95, 0.98, 0.99, 0.999, 0.9999]);
  let selectedPct = loadSelectedPct();

  // ---- helpers ---------------------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }
  function num(v, digits) {
    if (v === null || v === undefined || Number.isNaN(v)) return "";
    const d = digits === undefined ? 2 : digits;
    return Number(v).toLocaleString(undefined, { minimumFractionDigits: 0, maximumFractionDigits: d });
  }
  function ms(v) {
    if (v === null || v === undefined) return "";
    return v >= 10 ? num(v, 0) : num(v, 2);
  }
  function pctLabel(p) { return (Math.round(p * 1e6) / 1e4) + "%"; }
  function localTime(epoch) { return epoch ? new Date(epoch * 1000).toLocaleString() : ""; }
  function bytes(n) {
    if (!n) return "0 B";
    const u = ["B", "KB", "MB", "GB", "TB"]; let i = 0; let v = n;
    while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return v.toFixed(i ? 1 : 0) + " " + u[i];
  }
  function loadSelectedPct() {
    try {
      const saved = JSON.parse(localStorage.getItem("chartPercentiles") || "null");
      if (Array.isArray(saved) && saved.length) return saved.map(String);
    } catch (e) { /* ignore */ }
    return (args.percentiles_to_chart || [0.5, 0.95]).map(String);
  }
  async function call(method, url, body) {
    const init = { method, credentials: "same-origin", headers: {} };
    if (body) { init.body = body; init.headers["Content-Type"] = "application/x-www-form-urlencoded"; }
    const res = await fetch(url, init);
    const text = await res.text();
    let data = null;
    try { data = JSON.parse(text); } catch (e) { data = { success: res.ok, message: text }; }
    return { ok: res.ok, status: res.status, data };
  }
  const isActive = (s) => s === "spawning" || s === "running";

  // ---- theme -----------------------------------------------------------------------------------------
  function theme() { return document.documentElement.dataset.theme === "dark" ? "dark" : "light"; }
  $("btn-theme").addEventListener("click", () => {
    const next = theme() === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    try { localStorage.setItem("theme", next); } catch (e) { /* ignore */ }
    $("report-link").href = "./stats/report?theme=" + next;
    chartsDirty = true; drawCharts(true);
  });
  $("report-link").href = "./stats/report?theme=" + theme();

  // ---- tabs ------------------------------------------------------------------------------------------
  function currentTab() {
    const t = new URLSearchParams(location.search).get("tab");
    return TABS.includes(t) ? t : "stats";
  }
  function showTab(tab, push) {
    for (const a of document.querySelectorAll(".tabs a")) a.classList.toggle("active", a.dataset.tab === tab);
    for (const t of TABS) $("tab-" + t).hidden = t !== tab;
    if (push) {
      const q = new URLSearchParams(location.search); q.set("tab", tab);
      history.pushState(null, "", "?" + q.toString());
    }
    if (tab === "charts") { chartsDirty = true; drawCharts(true); }
    if (tab === "exceptions") loadExceptions();
    if (tab === "ratios") loadRatios();
    if (tab === "logViewer") { loadLogs(); $("c-logs").hidden = true; alertsSeen = lastStatus ? lastStatus.logs_alerts : null; }
    if (tab === "stats" && lastStats) renderStats(lastStats);
    if (tab === "workers" && lastStatus) renderWorkers(lastStatus);
  }
  for (const a of document.querySelectorAll(".tabs a")) {
    a.addEventListener("click", (ev) => { ev.preventDefault(); showTab(a.dataset.tab, true); });
  }
  window.addEventListener("popstate", () => showTab(currentTab(), false));

  // ---- start / edit / stop / reset ---------------------------------------------------------------------
  function prefill() {
    $("f-users").value = args.user_count || args.num_users || 1;
    $("f-rate").value = args.spawn_rate || 1;
    $("f-host").value = args.host || "";
    $("f-runtime").value = args.run_time || "";
    if (args.override_host_warning) $("host-note").textContent = "(setting this will override the host of every User class)";
    if (args.hide_common_options) {
      for (const id of ["f-users", "f-rate", "f-runtime"]) { $(id).disabled = true; $(id).required = false; }
      $("start-title").textContent = "Start new load test (" + args.shape_class + " decides the users)";
    }
    if (args.show_userclass_picker) {
      $("class-picker").hidden = false;
      for (const name of args.available_user_classes || []) {
        const box = el("input", { type: "checkbox", name: "user_classes", value: name });
        box.checked = true;
        $("class-list").append(el("label", {}, box, name));
      }
      for (const name of args.available_shape_classes || ["Default"]) $("shape-select").append(el("option", { value: name, text: name }));
    }
    for (const [name, opt] of Object.entries(args.extra_options || {})) {
      const input = el("input", { name: name, value: opt.default_value === null || opt.default_value === undefined ? "" : String(opt.default_value) });
      $("custom-options").append(el("label", {}, name, input));
    }
    $("version").textContent = "horde " + (args.version || "");
  }

  // an arrival rate replaces the user count and spawn rate: they are no longer required then
  const openModelFields = ["f-arrival", "f-stages"];
  const syncOpenModel = () => {
    const open = openModelFields.some((id) => $(id).value.trim() !== "");
    for (const id of ["f-users", "f-rate"]) { if (!$(id).disabled) $(id).required = !open; }
  };
  for (const id of openModelFields) $(id).addEventListener("input", syncOpenModel);

  $("start-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (args.show_userclass_picker && !document.querySelector("input[name=user_classes]:checked")) {
      $("start-error").textContent = "Select at least one user class";
      $("start-error").hidden = false;
      return;
    }
    const body = new URLSearchParams(new FormData($("start-form")));
    $("btn-start").disabled = true;
    const res = await call("POST", "./swarm", body);
    $("btn-start").disabled = false;
    if (!res.data || !res.data.success) {
      $("start-error").textContent = (res.data && res.data.message) || ("HTTP " + res.status);
      $("start-error").hidden = false;
      return;
    }
    $("start-error").hidden = true;
    showingNewForm = false;
    if (res.data.host) $("m-host").textContent = res.data.host;
    applyState("spawning");
  });
  $("btn-new").addEventListener("click", () => { showingNewForm = true; applyState(state); });
  $("btn-cancel-new").addEventListener("click", () => { showingNewForm = false; applyState(state); });
  $("btn-edit").addEventListener("click", () => {
    $("e-users").value = lastStatus ? lastStatus.target_user_count : $("f-users").value;
    $("e-rate").value = lastStatus && lastStatus.spawn_rate ? lastStatus.spawn_rate : $("f-rate").value;
    $("edit-error").hidden = true;
    $("edit-dialog").showModal();
  });
  $("btn-cancel-edit").addEventListener("click", () => $("edit-dialog").close());
  $("edit-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = new URLSearchParams({ user_count: $("e-users").value, spawn_rate: $("e-rate").value });
    const res = await call("POST", "./swarm", body);
    if (!res.data || !res.data.success) {
      $("edit-error").textContent = (res.data && res.data.message) || ("HTTP " + res.status);
      $("edit-error").hidden = false;
      return;
    }
    $("edit-dialog").close();
  });
  $("btn-stop").addEventListener("click", async () => {
    $("btn-stop").disabled = true; $("btn-stop").textContent = "Stopping…";
    await call("GET", "./stop");
  });
  $("btn-reset").addEventListener("click", async () => { await call("GET", "./stats/reset"); });

  function applyState(s) {
    state = s;
    const ready = s === "ready";
    const startVisible = ready || showingNewForm;
    $("start-card").hidden = !startVisible;
    $("dashboard").hidden = startVisible;
    $("btn-cancel-new").hidden = !showingNewForm;
    $("btn-new").hidden = !(s === "stopped") || showingNewForm;
    $("btn-edit").hidden = !isActive(s);
    $("btn-edit").disabled = !!args.hide_common_options;
    $("btn-stop").hidden = !(isActive(s));
    if (!isActive(s)) { $("btn-stop").disabled = false; $("btn-stop").textContent = "Stop"; }
    $("btn-reset").hidden = ready || showingNewForm;
    $("m-state").textContent = s;
    if (!startVisible && !document.querySelector(".tabs a.active")) showTab(currentTab(), false);
  }

  // ---- header ----------------------------------------------------------------------------------------
  function renderHeader(st, stats) {
    $("m-host").textContent = st.host || args.host || "—";
    $("m-host").title = st.host || "";
    $("m-users").textContent = num(st.user_count, 0);
    $("m-workers-box").hidden = !st.distributed;
    $("m-workers").textContent = st.workers ? st.workers.length : 0;
    $("m-rps").textContent = num(stats ? stats.current_rps : 0, 2);
    $("m-fail").textContent = Math.round((stats ? stats.fail_ratio : 0) * 100) + "%";
    const h = st.health || {};
    const badge = $("m-health");
    badge.className = "badge " + (h.saturated ? "bad" : "ok");
    badge.textContent = (h.saturated ? "SATURATED " : "OK ") + "CPU " + Math.round(h.cpu_percent || 0) + "% · lag " + Math.round((h.loop_lag || 0) * 1000) + " ms";
    badge.title = h.saturated
      ? "A load generator is saturated (CPU ≥ " + h.cpu_threshold + "% or event-loop lag ≥ " + h.lag_threshold * 1000 + " ms): response times include waiting for the CPU. Add workers (--processes)."
      : "Worst CPU and event-loop lag over " + (h.workers || 0) + " load generator(s)";
    $("c-failures").textContent = stats && stats.errors.length ? "(" + stats.errors.length + ")" : "";
    const ex = st.totals ? st.totals.exceptions : 0;
    $("c-exceptions").textContent = ex ? "(" + ex + ")" : "";
  }

  // ---- statistics table --------------------------------------------------------------------------------
  function statColumns() {
    const cols = [
      { key: "method", title: "Type", text: true },
      { key: "name", title: "Name", text: true, cls: "name" },
      { key: "num_requests", title: "# Requests", fmt: (v) => num(v, 0) },
      { key: "num_failures", title: "# Fails", fmt: (v) => num(v, 0) },
      { key: "median_response_time", title: "Median (ms)", fmt: ms },
    ];
    for (const p of args.percentiles_to_statistics || [0.95, 0.99]) {
      cols.push({ key: "response_time_percentile_" + p, title: pctLabel(p).replace("%", "") + "%ile (ms)", fmt: ms });
    }
    cols.push(
      { key: "avg_response_time", title: "Average (ms)", fmt: ms },
      { key: "min_response_time", title: "Min (ms)", fmt: ms },
      { key: "max_response_time", title: "Max (ms)", fmt: ms },
      { key: "avg_content_length", title: "Average size (bytes)", fmt: (v) => num(v, 2) },
      { key: "current_rps", title: "Current RPS", fmt: (v) => num(v, 2) },
      { key: "current_fail_per_sec", title: "Current Failures/s", fmt: (v) => num(v, 2) },
    );
    return cols;
  }
  const COLUMNS = statColumns();
  let hiddenCols = new Set(loadHiddenCols());
  function loadHiddenCols() {
    try { const v = JSON.parse(localStorage.getItem("hiddenColumns") || "[]"); return Array.isArray(v) ? v : []; } catch (e) { return []; }
  }
  function buildColumnPicker() {
    for (const c of COLUMNS) {
      if (c.key === "name") continue;  // a row without its name means nothing
      const box = el("input", { type: "checkbox", "data-col": c.key });
      box.checked = !hiddenCols.has(c.key);
      box.addEventListener("change", () => {
        if (box.checked) hiddenCols.delete(c.key); else hiddenCols.add(c.key);
        try { localStorage.setItem("hiddenColumns", JSON.stringify(Array.from(hiddenCols))); } catch (e) { /* ignore */ }
        applyHiddenCols();
      });
      $("column-list").append(el("label", {}, box, c.title));
    }
  }
  function applyHiddenCols() {
    const table = $("stats-table");
    COLUMNS.forEach((c, i) => {
      const hide = hiddenCols.has(c.key);
      for (const row of table.querySelectorAll("tr")) if (row.cells[i]) row.cells[i].classList.toggle("hidden-col", hide);
    });
  }
  function buildStatsHead() {
    const tr = el("tr");
    for (const c of COLUMNS) {
      const th = el("th", { class: c.text ? "text" : "", text: c.title });
      th.dataset.key = c.key;
      th.addEventListener("click", () => {
        if (sort.key !== c.key) sort = { key: c.key, dir: 1 };
        else sort = sort.dir === 1 ? { key: c.key, dir: -1 } : { key: null, dir: 0 };
        if (lastStats) renderStats(lastStats);
      });
      tr.append(th);
    }
    $("stats-table").tHead.append(tr);
  }
  function statRow(row, tag) {
    const tr = el("tr");
    for (const c of COLUMNS) {
      const v = row[c.key];
      const td = el(tag || "td", { class: (c.text ? "text " : "") + (c.cls || "") }, c.fmt ? c.fmt(v) : (v === undefined ? "" : v));
      if (c.key === "name") td.title = v;
      tr.append(td);
    }
    return tr;
  }
  function renderStats(stats) {
    const rows = stats.stats.filter((r) => r.name !== AGG || r.method !== "");
    const total = stats.stats.find((r) => r.name === AGG && r.method === "");
    if (sort.key) {
      const k = sort.key; const d = sort.dir;
      rows.sort((a, b) => (a[k] > b[k] ? d : a[k] < b[k] ? -d : 0));
    }
    for (const th of $("stats-table").tHead.rows[0].cells) {
      th.classList.toggle("asc", th.dataset.key === sort.key && sort.dir === 1);
      th.classList.toggle("desc", th.dataset.key === sort.key && sort.dir === -1);
    }
    const body = document.createElement("tbody");
    for (const r of rows) body.append(statRow(r));
    $("stats-table").replaceChild(body, $("stats-table").tBodies[0]);
    const foot = $("stats-table").tFoot; foot.textContent = "";
    if (total) foot.append(statRow(total));
    if (hiddenCols.size) applyHiddenCols();
  }

  // ---- failures / exceptions / ratios / logs / workers ------------------------------------------------
  function renderFailures(stats) {
    const body = document.createElement("tbody");
    const errs = stats.errors.slice().sort((a, b) => b.occurrences - a.occurrences);
    for (const e of errs) {
      body.append(el("tr", {}, el("td", { text: num(e.occurrences, 0) }), el("td", { class: "text", text: e.method }),
        el("td", { class: "text name", text: e.name }), el("td", { class: "text", text: e.error }),
        el("td", { text: localTime(e.first_seen) }), el("td", { text: localTime(e.last_seen) })));
    }
    $("failures-table").replaceChild(body, $("failures-table").tBodies[0]);
    $("failures-empty").hidden = errs.length > 0;
  }
  async function loadExceptions() {
    const res = await call("GET", "./exceptions");
    if (!res.ok) return;
    const body = document.createElement("tbody");
    for (const e of res.data.exceptions) {
      body.append(el("tr", {}, el("td", { text: num(e.count, 0) }), el("td", { class: "text", text: e.msg }),
        el("td", { class: "text" }, el("pre", { text: e.traceback })), el("td", { class: "text", text: e.nodes })));
    }
    $("exceptions-table").replaceChild(body, $("exceptions-table").tBodies[0]);
    $("exceptions-empty").hidden = res.data.exceptions.length > 0;
  }
  function ratioList(tree) {
    const ul = el("ul", { class: "ratio" });
    for (const [name, node] of Object.entries(tree || {})) {
      const li = el("li", { text: (node.ratio * 100).toFixed(1) + "% " + name });
      if (node.tasks && Object.keys(node.tasks).length) li.append(ratioList(node.tasks));
      ul.append(li);
    }
    return ul;
  }
  async function loadRatios() {
    const res = await call("GET", "./tasks");
    if (!res.ok) return;
    $("ratio-per-class").replaceChildren(ratioList(res.data.per_class));
    $("ratio-total").replaceChildren(ratioList(res.data.total));
  }
  function logLines(lines) {
    const frag = document.createDocumentFragment();
    for (const line of lines) {
      const m = /\/(DEBUG|INFO|WARNING|ERROR|CRITICAL)\//.exec(line);
      frag.append(el("div", { class: m ? m[1] : "", text: line }));
    }
    return frag;
  }
  async function loadLogs() {
    const res = await call("GET", "./logs");
    if (!res.ok) return;
    const box0 = $("logs-master");
    const atBottom = box0.scrollTop + box0.clientHeight >= box0.scrollHeight - 20;
    box0.replaceChildren(logLines(res.data.master));
    if (atBottom) box0.scrollTop = box0.scrollHeight;  // follow new lines unless the reader scrolled up
    const box = $("logs-workers"); box.textContent = "";
    for (const [id, lines] of Object.entries(res.data.workers || {})) {
      const d = el("details", {}, el("summary", { text: "Worker " + id }));
      const pre = el("pre", { class: "logs" }); pre.append(logLines(lines)); d.append(pre); box.append(d);
    }
  }
  function renderWorkers(st) {
    const body = document.createElement("tbody");
    const h = st.health || { cpu_threshold: 90, lag_threshold: 0.1 };
    for (const w of (st.workers || []).slice().sort((a, b) => (a.id > b.id ? 1 : -1))) {
      body.append(el("tr", {}, el("td", { class: "text", text: w.id }), el("td", { class: "text" + (w.state === "missing" ? " state-missing" : ""), text: w.state }),
        el("td", { text: num(w.user_count, 0) }),
        el("td", { class: w.cpu_percent >= h.cpu_threshold ? "cpu-bad" : "", text: num(w.cpu_percent, 1) + "%" }),
        el("td", { class: w.loop_lag >= h.lag_threshold ? "lag-bad" : "", text: num(w.loop_lag * 1000, 1) + " ms" }),
        el("td", { text: bytes(w.memory_rss) }),
        el("td", { text: w.last_heartbeat ? localTime(w.last_heartbeat) : "—" })));
    }
    $("workers-table").replaceChild(body, $("workers-table").tBodies[0]);
  }

  // ---- charts ----------------------------------------------------------------------------------------
  function buildPicker() {
    const box = $("pct-picker");
    for (const p of chartPercentiles) {
      const key = String(p);
      const input = el("input", { type: "checkbox", value: key, "data-pct": key });
      input.checked = selectedPct.includes(key);
      input.addEventListener("change", () => {
        selectedPct = Array.from(box.querySelectorAll("input:checked")).map((i) => i.value);
        try { localStorage.setItem("chartPercentiles", JSON.stringify(selectedPct)); } catch (e) { /* ignore */ }
        chartsDirty = true; drawCharts(true);
      });
      box.append(el("label", {}, input, pctLabel(p)));
    }
  }
  function layout(title, yTitle) {
    const dark = theme() === "dark";
    const fg = dark ? "#b3c3bc" : "#444"; const grid = dark ? "#4c4c52" : "#e5e7ea";
    const shapes = []; const annotations = [];
    for (const m of markers) {
      const x = new Date(m.t * 1000);
      shapes.push({ type: "line", xref: "x", yref: "paper", x0: x, x1: x, y0: 0, y1: 1,
        line: { color: MARKER_COLORS[m.kind] || "#888", width: 1, dash: m.kind === "start" ? "solid" : "dot" } });
      annotations.push({ x: x, y: 1, xref: "x", yref: "paper", text: m.label, showarrow: false, xanchor: "left", yanchor: "top", font: { size: 10, color: fg } });
    }
    return {
      title: { text: title, font: { size: 14, color: fg }, x: 0.01 }, height: 300,
      margin: { l: 60, r: 20, t: 36, b: 36 }, paper_bgcolor: dark ? "#27272a" : "#ffffff", plot_bgcolor: dark ? "#27272a" : "#ffffff",
      font: { color: fg }, xaxis: { type: "date", gridcolor: grid, linecolor: dark ? "#5b6f66" : "#ccc" },
      yaxis: { title: { text: yTitle }, gridcolor: grid, rangemode: "tozero", linecolor: dark ? "#5b6f66" : "#ccc" },
      legend: { orientation: "h", y: -0.18 }, shapes, annotations, uirevision: "keep",
    };
  }
  function drawCharts(force) {
    if ($("tab-charts").hidden || typeof Plotly === "undefined") return;
    if (!chartsDirty && !force) return;
    chartsDirty = false;
    const x = points.map((p) => new Date(p.t * 1000));
    const cfg = { displaylogo: false, responsive: true };
    Plotly.react("chart-rps", [
      { x, y: points.map((p) => p.rps), name: "RPS", type: "scatter", mode: "lines", line: { color: "#00ca5a" } },
      { x, y: points.map((p) => p.fps), name: "Failures/s", type: "scatter", mode: "lines", line: { color: "#ff6d6d" } },
    ], layout("Total Requests per Second", "req/s"), cfg);
    const rt = [];
    chartPercentiles.forEach((p, i) => {
      const key = String(p);
      if (!selectedPct.includes(key)) return;
      rt.push({ x, y: points.map((pt) => (pt.p ? pt.p[key] : null)), name: pctLabel(p) + " (last 10 s)", type: "scatter", mode: "lines",
        line: { color: PCT_COLORS[i % PCT_COLORS.length] }, connectgaps: false });
    });
    Plotly.react("chart-rt", rt, layout("Response Times (ms)", "ms"), cfg);
    const usersLayout = layout("Number of Users", "users");
    const maxUsers = points.reduce((m, p) => Math.max(m, p.users || 0), 0);
    if (maxUsers <= 10) usersLayout.yaxis.dtick = 1;
    Plotly.react("chart-users", [
      { x, y: points.map((p) => p.users), name: "Number of Users", type: "scatter", mode: "lines", line: { color: "#0099ff", shape: "hv" } },
    ], usersLayout, cfg);
  }
  function addPoints(newPoints) {
    const last = points.length ? points[points.length - 1].t : -Infinity;
    let added = false;
    for (const p of newPoints) if (p.t > last) { points.push(p); added = true; }
    if (added) chartsDirty = true;
  }

  // ---- the push channel --------------------------------------------------------------------------------
  function onTick(data) {
    lastStatus = data.status; lastStats = data.stats;
    const s = data.status.state;
    if (s !== state || !document.querySelector(".tabs a.active")) applyState(s);
    renderHeader(data.status, data.stats);
    const noWorkers = !!data.status.distributed && !(data.status.workers || []).some((w) => w.state !== "missing");
    $("no-workers").hidden = !noWorkers;
    $("btn-start").disabled = noWorkers;
    if (data.history_id !== historyId) {  // a new test: its charts start empty
      historyId = data.history_id; points = []; chartsDirty = true;
    }
    addPoints(data.points || []);
    if (JSON.stringify(data.markers) !== JSON.stringify(markers)) { markers = data.markers || []; chartsDirty = true; }
    const tab = currentTab();
    if (!$("dashboard").hidden) {
      if (tab === "stats") renderStats(data.stats);
      if (tab === "failures") renderFailures(data.stats);
      if (tab === "workers") renderWorkers(data.status);
      if (tab === "charts") drawCharts(false);
      if (isActive(s) && tab === "exceptions" && Date.now() % 5000 < 1000) loadExceptions();
      if (isActive(s) && tab === "ratios" && Date.now() % 5000 < 1000) loadRatios();
    }
    const lv = data.status.logs_version || 0;
    if (lv !== logsSeen) {
      if (tab === "logViewer" && !$("dashboard").hidden) loadLogs();
      logsSeen = lv;
    }
    const alerts = data.status.logs_alerts || 0;
    if (alertsSeen === null || tab === "logViewer") alertsSeen = alerts;
    else if (alerts > alertsSeen) $("c-logs").hidden = false;
  }
  function connect() {
    const source = new EventSource("./api/events");
    source.addEventListener("open", () => { $("conn").textContent = "live"; });
    source.addEventListener("error", () => { $("conn").textContent = "disconnected, retrying…"; });
    source.addEventListener("history", (ev) => {
      const h = JSON.parse(ev.data);
      points = h.points || []; markers = h.markers || []; historyId = h.history_id; chartsDirty = true; drawCharts(false);
    });
    source.addEventListener("tick", (ev) => onTick(JSON.parse(ev.data)));
    window.hordeSource = source;
  }

  prefill();
  buildStatsHead();
  buildColumnPicker();
  applyHiddenCols();
  buildPicker();
  applyState(state);
  if (state !== "ready") showTab(currentTab(), false);
  connect();
})();

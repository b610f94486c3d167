// The live dashboard (query_api/dashboard.html). Every number comes from the query API's own
// endpoints, for the window that endpoint echoes: /v1/live (WebSocket: clicks and fraud per
// minute), /v1/ads/top, /v1/reports (by country, by device), /v1/health (batch watermark, server
// clock) and /v1/pipeline (reconciliation, batch jobs, stream, Airflow). Charts are uPlot, served
// by the API from its npm install; without it the numbers and tables still update.
// Values from the API are shown with textContent only: ids are data, never markup.
"use strict";

const $ = (id) => document.getElementById(id);
const MINUTE_MS = 60000;
const HAS_CHARTS = typeof uPlot !== "undefined";
const COLORS = { click: "#2f6fdf", fraud: "#d9534f", ctr: "#2e8b57" };
let serverOffsetMs = 0; // the API's clock minus this browser's, from /v1/health
let socket = null;
let retryMs = 1000;
const charts = {};

// --- formatting -----------------------------------------------------------------------------------

const int = (n) => (n == null ? "–" : Number(n).toLocaleString("en-US"));
const pct = (x, digits = 2) => (x == null ? "–" : `${(100 * x).toFixed(digits)} %`);
const hhmm = (iso) => (iso ? iso.slice(11, 16) : "–");
const utc = (iso) => (iso ? iso.replace("T", " ").replace(/(:\d\d)(\.\d+)?Z$/, "$1") : "–");
const short = (iso) => (iso ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}` : "–"); // MM-DD HH:MM
const seconds = (ms) => (ms == null ? "–" : `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`);
const compact = (v) => (Math.abs(v) >= 1000 ? `${+(v / 1000).toFixed(1)}k` : String(v));
const clockOf = (ts) => new Date(ts * 1000).toISOString().slice(11, 16); // uPlot time (s) -> HH:MM UTC

function serverNow() {
  return new Date(Date.now() + serverOffsetMs);
}

function serverToday(offsetDays) {
  const now = serverNow();
  now.setUTCDate(now.getUTCDate() - offsetDays);
  return now.toISOString().slice(0, 10);
}

function setStatus(text, down) {
  $("status").textContent = text;
  $("status").className = down ? "down" : "";
}

function row(cells, attrs) {
  const tr = document.createElement("tr");
  for (const [value, cls] of cells) {
    const td = document.createElement("td");
    td.textContent = value == null ? "–" : String(value);
    if (cls) td.className = cls;
    tr.appendChild(td);
  }
  for (const [k, v] of Object.entries(attrs || {})) tr.dataset[k] = v == null ? "" : String(v);
  return tr;
}

function note(el, text, cls) {
  el.textContent = text;
  el.className = cls || "";
}

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON: the status says it */ }
  if (!response.ok) throw new Error((body && body.error) || `HTTP ${response.status}`);
  return body;
}

// --- charts ---------------------------------------------------------------------------------------

const utcDate = (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC");

function chart(id, options, data) {
  if (!HAS_CHARTS) return null;
  const el = $(id);
  if (charts[id]) charts[id].destroy();
  charts[id] = new uPlot({ width: el.clientWidth || 600, height: options.height || 240, ...options }, data, el);
  return charts[id];
}

const countRange = (u, min, max) => [0, Math.max(1, max || 0) * 1.1];

function timeChart(id, series, data, { height = 240, range = countRange, axis = {} } = {}) {
  if (!HAS_CHARTS) return;
  if (charts[id]) {
    charts[id].setData(data);
    return;
  }
  chart(id, {
    tzDate: utcDate,
    height,
    scales: { x: { time: true }, y: { range } },
    axes: [{ values: (u, splits) => splits.map(clockOf) }, { size: 50, values: (u, splits) => splits.map(compact), ...axis }],
    series: [{ label: "minute (UTC)", value: (u, v) => (v == null ? "–" : clockOf(v)) }, ...series],
  }, data);
}

function categoryChart(id, labels, clicks, ctr) {
  if (!HAS_CHARTS) return;
  const xs = labels.map((_, i) => i);
  chart(id, {
    height: 170,
    legend: { show: false },
    cursor: { show: false },
    scales: {
      x: { time: false, range: () => [-0.5, Math.max(labels.length, 1) - 0.5] },
      y: { range: countRange },
      ctr: { range: (u, min, max) => [0, Math.max(0.01, max || 0) * 1.2] },
    },
    axes: [
      { splits: () => xs, values: (u, splits) => splits.map((i) => labels[i] ?? ""), grid: { show: false } },
      { size: 50, values: (u, splits) => splits.map(compact) },
      { scale: "ctr", side: 1, grid: { show: false }, values: (u, splits) => splits.map((v) => `${(100 * v).toFixed(1)}%`) },
    ],
    series: [
      {},
      { label: "clicks", fill: COLORS.click, stroke: COLORS.click, paths: uPlot.paths.bars({ size: [0.6, 60] }), points: { show: false } },
      { label: "CTR", scale: "ctr", stroke: COLORS.ctr, paths: () => null, points: { show: true, size: 8, fill: COLORS.ctr } },
    ],
  }, [xs, clicks, ctr]);
}

window.addEventListener("resize", () => {
  for (const [id, c] of Object.entries(charts)) c.setSize({ width: $(id).clientWidth, height: c.height });
});

// --- live minutes (WebSocket) -----------------------------------------------------------------------

// Every minute of [from, to), the ones without a row as zero: a quiet minute is zero clicks, not
// a minute that disappears from the axis. The fraud share of a minute without clicks is a gap.
function everyMinute(message) {
  const start = Date.parse(message.from);
  const end = Date.parse(message.to);
  const byMinute = new Map(message.minutes.map((m) => [Date.parse(m.window_start), m]));
  const xs = [], clicks = [], fraud = [], share = [];
  for (let t = start; t < end; t += MINUTE_MS) {
    const m = byMinute.get(t);
    const c = m ? m.clicks || 0 : 0;
    const f = m ? m.fraud_clicks || 0 : 0;
    xs.push(t / 1000);
    clicks.push(c);
    fraud.push(f);
    share.push(c + f > 0 ? f / (c + f) : null);
  }
  return { xs, clicks, fraud, share };
}

function showMinutes(message) {
  const { xs, clicks, fraud, share } = everyMinute(message);
  if (HAS_CHARTS) {
    timeChart("clicks-chart", [
      { label: "clicks", fill: COLORS.click, stroke: COLORS.click, paths: uPlot.paths.bars({ size: [0.8, 40] }), points: { show: false } },
      { label: "fraud clicks", stroke: COLORS.fraud, width: 2, points: { show: false } },
    ], [xs, clicks, fraud], { height: 260 });
    // spanGaps false: a minute without clicks has no share, drawn as a gap rather than as 0 %
    timeChart("fraud-chart", [
      { label: "fraud share", stroke: COLORS.fraud, width: 2, spanGaps: false, value: (u, v) => pct(v, 1) },
    ], [xs, share], {
      height: 180,
      range: (u, min, max) => [0, Math.min(1, Math.max(0.1, (max || 0) * 1.3))],
      axis: { values: (u, splits) => splits.map((v) => `${(100 * v).toFixed(0)}%`) },
    });
  }

  const totalClicks = clicks.reduce((a, b) => a + b, 0);
  const totalFraud = fraud.reduce((a, b) => a + b, 0);
  const totals = $("clicks-totals");
  Object.assign(totals.dataset, { clicks: totalClicks, fraud: totalFraud, from: message.from, to: message.to });
  const rows = message.minutes.length;
  const lastMinute = xs.length ? clockOf(xs[xs.length - 1]) : "–";
  totals.textContent = `${int(totalClicks)} clicks, ${int(totalFraud)} fraud clicks in the minutes ${hhmm(message.from)}–${lastMinute} UTC`
    + ` (the last still filling) · ${rows} of ${xs.length} minutes had events, the others are 0`
    + (message.minutes.some((m) => m.is_final === false) ? " · speed layer, not final" : "");
  $("clicks-range").textContent = `${message.from.slice(0, 10)} ${hhmm(message.from)}–${lastMinute} UTC`;

  const all = totalClicks + totalFraud;
  const big = $("fraud-share");
  big.textContent = all ? pct(totalFraud / all, 1) : "–";
  big.dataset.share = all ? String(totalFraud / all) : "";
  $("fraud-note").textContent = all
    ? `${int(totalFraud)} of ${int(all)} clicks flagged as fraud in the last ${xs.length} minutes`
    : `no clicks in the last ${xs.length} minutes`;
}

function liveUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const params = new URLSearchParams({ minutes: $("minutes").value });
  const ad = $("ad").value.trim();
  if (ad) params.set("ad_id", ad);
  return `${scheme}//${location.host}/v1/live?${params}`;
}

function connect() {
  if (socket) { socket.onclose = null; socket.onmessage = null; socket.close(); }
  const ad = $("ad").value.trim();
  socket = new WebSocket(liveUrl());
  socket.onopen = () => { retryMs = 1000; setStatus("live", false); };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "minutes") {
      showMinutes(message);
      $("clicks-totals").dataset.ad = ad; // the filter these numbers are for ("" = all ads)
      setStatus(`live · updated ${serverNow().toISOString().slice(11, 19)} UTC`, false);
    } else if (message.type === "error") {
      setStatus(`error: ${message.error}`, true);
    }
  };
  socket.onclose = () => {
    setStatus("disconnected, retrying…", true);
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 30000);
  };
}

// --- polled panels -------------------------------------------------------------------------------

async function refreshTop() {
  const label = $("top-label");
  const tbody = $("top");
  const windowName = $("window").selectedOptions[0].textContent;
  try {
    const body = await getJSON(`/v1/ads/top?window=${encodeURIComponent($("window").value)}&n=10&fallback=latest_minute`);
    let ads = body.ads;
    tbody.dataset.source = "window";
    if (ads.length) {
      note(label, `${windowName}: ${hhmm(body.from)}–${hhmm(body.to)} UTC`, "label");
    } else if (body.fallback) {
      ads = body.fallback.ads;
      tbody.dataset.source = "fallback";
      note(label, `No clicks in the ${windowName} (${hhmm(body.from)}–${hhmm(body.to)} UTC). `
        + `Showing the latest minute with clicks: ${utc(body.fallback.from)} UTC.`, "label fallback");
    } else {
      tbody.dataset.source = "none";
      note(label, `No clicks in the ${windowName} nor in the 24 hours before it.`, "label fallback");
    }
    tbody.replaceChildren(...ads.map((ad) => row([[ad.rank, "num"], [ad.ad_id, ""], [int(ad.clicks), "num"]], { ad: ad.ad_id, clicks: ad.clicks })));
  } catch (error) {
    note(label, `top ads unavailable: ${error.message}`, "label bad");
  }
}

async function refreshBreakdown(dimension, labelName) {
  const span = Number($("span").value);
  const from = serverToday(span);
  const range = $(`${labelName}-range`);
  try {
    const body = await getJSON(`/v1/reports?dimensions=${dimension}&metrics=clicks,impressions,ctr&from=${from}&limit=500`);
    const rows = body.rows.slice().sort((a, b) => (b.clicks - a.clicks) || String(a[dimension]).localeCompare(String(b[dimension])));
    const last = new Date(Date.parse(`${body.to}T00:00:00Z`) - 86400000).toISOString().slice(0, 10);
    range.textContent = body.from === last ? body.from : `${body.from} – ${last}`;
    $(labelName).replaceChildren(...rows.map((r) => row(
      [[r[dimension], ""], [int(r.clicks), "num"], [int(r.impressions), "num"], [pct(r.ctr), "num"]],
      { key: r[dimension], clicks: r.clicks, impressions: r.impressions },
    )));
    const shown = rows.slice(0, 12);
    const label = (key) => (key === "unknown" ? "n/a" : key);
    categoryChart(`${labelName}-chart`, shown.map((r) => label(r[dimension])), shown.map((r) => r.clicks), shown.map((r) => r.ctr));
  } catch (error) {
    range.textContent = `unavailable: ${error.message}`;
  }
}

async function refreshHealth() {
  try {
    const response = await fetch("/v1/health");
    const body = await response.json();
    if (body.now) serverOffsetMs = Date.parse(body.now) - Date.now();
    if (!response.ok) throw new Error(body.trino ? body.trino.error : `HTTP ${response.status}`);
    const w = body.batch_watermark;
    $("watermark-day").textContent = w.day || "no day final yet";
    $("watermark-day").dataset.day = w.day || "";
    $("watermark-at").textContent = utc(w.advanced_at);
  } catch (error) {
    note($("watermark-day"), `unknown (${error.message})`, "bad");
  }
}

function reconciliationText(day) {
  const diff = day.diff > 0 ? `+${int(day.diff)}` : int(day.diff);
  return `${day.day}: ${day.passed ? "passed" : "FAILED"} · speed ${int(day.speed_total)} vs gold ${int(day.gold_total)} (${diff});`
    + ` late: ${int(day.late_dropped)} dropped, ${int(day.late_counted)} counted; ${int(day.unexplained)} unexplained`
    + ` (drift ${pct(day.drift, 3)}) · checked ${short(day.checked_at)}`;
}

async function refreshPipeline() {
  let body;
  try {
    body = await getJSON("/v1/pipeline?days=7");
  } catch (error) {
    $("pipeline-at").textContent = `unavailable: ${error.message}`;
    return;
  }
  $("pipeline-at").textContent = `as of ${utc(body.now)} UTC`;

  const rec = body.reconciliation;
  const latest = rec.days[0];
  note($("recon-latest"), latest ? reconciliationText(latest) : rec.status === "ok" ? "no day reconciled yet" : "unknown",
    latest ? (latest.passed ? "good" : "bad") : "");
  $("recon").replaceChildren(...rec.days.map((d) => row([
    [d.day.slice(5), ""], [int(d.speed_total), "num"], [int(d.gold_total), "num"], [int(d.diff), "num"],
    [int(d.late_dropped), "num"], [int(d.unexplained), "num"], [d.passed ? "yes" : "no", d.passed ? "good" : "bad"],
  ], { day: d.day })));
  if (rec.status !== "ok") note($("recon-note"), `reconciliation unknown: ${rec.error}`, "label bad");

  const stream = body.stream;
  note($("stream-state"), stream.status === "unknown" ? "unknown (no heartbeat)"
    : `${stream.status} · heartbeat ${stream.age_seconds} s ago`, stream.status === "ok" ? "good" : "warn");
  $("stream").replaceChildren(...stream.queries.map((q) => row([
    [q.active ? q.query : `${q.query} (stopped)`, q.active ? "" : "bad"], [q.batch_id, "num"],
    [q.rows_per_s == null ? null : Math.round(q.rows_per_s).toLocaleString("en-US"), "num"],
    [seconds(q.duration_ms), "num"], [q.lag == null ? "unknown" : int(q.lag), "num"],
  ], { query: q.query })));

  const jobs = body.jobs;
  note($("jobs-state"), jobs.status === "ok" ? (jobs.runs.length ? "" : "no run yet") : `unknown: ${jobs.error}`, jobs.status === "ok" ? "" : "warn");
  $("jobs").replaceChildren(...jobs.runs.map((j) => row([
    [j.job, ""], [j.day, ""], [j.status, j.status === "succeeded" ? "good" : "bad"], [short(j.finished_at), ""],
  ], { job: j.job })));

  const airflow = body.airflow;
  note($("airflow-state"), airflow.status === "ok" ? "" : `unknown: ${airflow.error}`, airflow.status === "ok" ? "" : "warn");
  $("airflow").replaceChildren(...airflow.dags.map((d) => {
    const run = d.runs[0];
    const state = run ? run.state : "never ran";
    return row([[d.is_paused ? `${d.dag_id} (paused)` : d.dag_id, ""], [run ? short(run.run_after) : "–", ""],
      [state, state === "success" ? "good" : state === "failed" ? "bad" : ""]], { dag: d.dag_id });
  }));
}

function refreshBreakdowns() {
  refreshBreakdown("country", "country");
  refreshBreakdown("device_type", "device");
}

function every(ms, fn) { fn(); return setInterval(fn, ms); }

// The controls can be set from the page's address: /?ad=ad-00042&minutes=60&window=1h&span=6
const initial = new URLSearchParams(location.search);
for (const id of ["ad", "minutes", "window", "span"]) {
  const value = initial.get(id);
  const el = $(id);
  if (value !== null && (el.tagName !== "SELECT" || [...el.options].some((o) => o.value === value))) el.value = value;
}

$("minutes").addEventListener("change", connect);
$("ad").addEventListener("change", connect);
$("window").addEventListener("change", refreshTop);
$("span").addEventListener("change", refreshBreakdowns);
refreshHealth().then(() => {
  connect();
  every(5000, refreshTop);
  every(30000, refreshBreakdowns);
  every(15000, refreshPipeline);
  setInterval(refreshHealth, 10000);
});

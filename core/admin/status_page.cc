#include "core/admin/status_page.h"

namespace sluice::admin {

namespace {

// Rates and latency percentiles are computed in the page from the difference between two
// polls of /stats (counters, and histogram buckets interpolated like histogram_quantile).
constexpr std::string_view kPage = R"HTML(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sluice status</title>
<style>
:root { --bg:#f5f6f8; --card:#fff; --fg:#1d2330; --muted:#6b7385; --line:#e2e5eb;
        --ok:#1b8a4b; --okbg:#e3f5ea; --bad:#c62828; --badbg:#fde7e7; --warn:#a15c00;
        --warnbg:#fff1dc; --accent:#2f5bd3; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
       background:var(--bg); color:var(--fg); }
header { display:flex; align-items:center; gap:16px; padding:12px 24px; background:#1d2330;
         color:#fff; flex-wrap:wrap; }
header h1 { font-size:18px; margin:0; letter-spacing:.5px; }
header .meta { display:flex; gap:16px; flex-wrap:wrap; color:#c8cedb; font-size:13px; }
header .meta b { color:#fff; font-weight:600; }
header .spacer { flex:1; }
header button { background:transparent; color:#c8cedb; border:1px solid #4a5367; border-radius:4px;
                padding:3px 10px; cursor:pointer; font:inherit; font-size:12px; }
main { padding:16px 24px 32px; display:grid; gap:16px;
       grid-template-columns:repeat(auto-fit,minmax(520px,1fr)); }
section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px 16px;
          min-width:0; }
section.wide { grid-column:1/-1; }
h2 { font-size:13px; text-transform:uppercase; letter-spacing:.8px; color:var(--muted);
     margin:2px 0 10px; }
h3 { font-size:14px; margin:14px 0 6px; display:flex; gap:10px; align-items:baseline; }
h3 .sub { color:var(--muted); font-weight:400; font-size:12px; }
table { width:100%; border-collapse:collapse; }
th, td { text-align:left; padding:5px 8px; border-bottom:1px solid var(--line); white-space:nowrap; }
th { font-size:12px; color:var(--muted); font-weight:600; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
tr:last-child td { border-bottom:0; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; }
.ok { color:var(--ok); background:var(--okbg); }
.bad { color:var(--bad); background:var(--badbg); }
.warn { color:var(--warn); background:var(--warnbg); }
.muted { color:var(--muted); }
.empty { color:var(--muted); font-style:italic; padding:6px 0; }
.bar { height:6px; background:var(--accent); border-radius:3px; min-width:2px; }
#banner { display:none; margin:16px 24px 0; padding:10px 14px; border-radius:6px;
          background:var(--badbg); color:var(--bad); }
#login { display:none; max-width:420px; margin:64px auto; background:var(--card);
         border:1px solid var(--line); border-radius:8px; padding:20px 24px; }
#login h2 { font-size:16px; text-transform:none; letter-spacing:0; color:var(--fg); }
#login input { width:100%; padding:8px; font:inherit; border:1px solid var(--line);
               border-radius:4px; margin:8px 0 12px; }
#login button { padding:7px 16px; font:inherit; background:var(--accent); color:#fff; border:0;
                border-radius:4px; cursor:pointer; }
#login .err { color:var(--bad); min-height:1.4em; }
code { font-family:ui-monospace,SFMono-Regular,Menlo,monospace; font-size:12px; }
.changes span { margin-right:8px; }
.add { color:var(--ok); } .rem { color:var(--bad); } .chg { color:var(--warn); }
</style>
</head>
<body>
<header>
  <h1>sluice</h1>
  <div class="meta" id="meta">
    <span>state <b id="state">…</b></span>
    <span>generation <b id="generation">–</b></span>
    <span>uptime <b id="uptime">–</b></span>
    <span>version <b id="version">–</b></span>
    <span>updated <b id="updated">never</b></span>
  </div>
  <div class="spacer"></div>
  <button id="forget" type="button" title="Forget the admin key kept for this tab">forget key</button>
</header>
<div id="banner"></div>
<form id="login" autocomplete="off">
  <h2>Admin key</h2>
  <div class="muted">This admin port has an <code>api_key</code>. Enter it to see the status;
  it is kept in this tab only (sessionStorage) and sent as <code>Authorization: Bearer</code>.</div>
  <input id="key" type="password" placeholder="api_key" aria-label="admin api key">
  <div class="err" id="loginerr"></div>
  <button type="submit">Show status</button>
</form>
<main id="main">
  <section class="wide"><h2>Listeners</h2><div id="listeners" class="empty">loading…</div></section>
  <section class="wide"><h2>Clusters</h2><div id="clusters" class="empty">loading…</div></section>
  <section><h2>Top AI agents</h2><div id="agents" class="empty">loading…</div></section>
  <section><h2>Reload history</h2><div id="reloads" class="empty">loading…</div></section>
</main>
<script>
"use strict";
const KEY_ITEM = "sluice-admin-key";
const POLL_MS = 2000;
let key = sessionStorage.getItem(KEY_ITEM) || "";
// A key may be handed over in the fragment (never sent to the server): #key=...
function keyFromFragment() {
  if (!location.hash.startsWith("#key=")) return false;
  key = decodeURIComponent(location.hash.slice(5));
  sessionStorage.setItem(KEY_ITEM, key);
  history.replaceState(null, "", location.pathname);
  return true;
}
keyFromFragment();
let prev = null;      // the previous /stats poll: {t, series}
let timer = null;
const $ = (id) => document.getElementById(id);

class AuthError extends Error {}

async function get(path) {
  const headers = key ? { Authorization: "Bearer " + key } : {};
  const r = await fetch(path, { headers, cache: "no-store" });
  if (r.status === 401) throw new AuthError(path);
  if (r.status === 503) return null; // the config is not live yet
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;",
    '"': "&quot;", "'": "&#39;" }[c]));
}
function fmtRate(v) {
  if (v === null || v === undefined) return "–";
  if (v === 0) return "0";
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}
function fmtCount(v) {
  if (v >= 1e9) return (v / 1e9).toFixed(1) + "G";
  if (v >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (v >= 1e4) return (v / 1e3).toFixed(1) + "k";
  return String(Math.round(v));
}
function fmtSecs(s) {
  if (s === null || s === undefined || isNaN(s)) return "–";
  if (s < 0.001) return (s * 1e6).toFixed(0) + " µs";
  if (s < 1) return (s * 1e3).toFixed(s < 0.01 ? 2 : 1) + " ms";
  return s.toFixed(2) + " s";
}
function fmtUptime(ms) {
  let s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400); s %= 86400;
  const h = Math.floor(s / 3600); s %= 3600;
  const m = Math.floor(s / 60); s %= 60;
  return (d ? d + "d " : "") + (d || h ? h + "h " : "") + (d || h || m ? m + "m " : "") + s + "s";
}

// /stats -> {name: [{labels, value | buckets, count, sum}]}
function index(stats) {
  const out = {};
  for (const m of stats.metrics || []) (out[m.name] = out[m.name] || []).push(m);
  return out;
}
function pick(series, name, match) {
  return (series[name] || []).filter((m) =>
    Object.entries(match).every(([k, v]) => m.labels[k] === v));
}
function sum(list) { return list.reduce((a, m) => a + (m.value || 0), 0); }
function labelKey(m) { return JSON.stringify(m.labels); }

// The same series in the previous poll.
function before(name, m) {
  if (!prev) return null;
  const k = labelKey(m);
  return (prev.series[name] || []).find((p) => labelKey(p) === k) || null;
}
// Requests per second of a set of counter series since the previous poll.
function rate(series, name, match, now) {
  if (!prev) return null;
  const dt = (now - prev.t) / 1000;
  if (dt <= 0) return null;
  let d = 0;
  for (const m of pick(series, name, match)) {
    const p = before(name, m);
    d += Math.max(0, (m.value || 0) - (p ? p.value || 0 : 0));
  }
  return d / dt;
}
// Percentiles of a histogram over the last poll interval; over all time when nothing was
// recorded in the interval. Returns {p50, p90, p99, window}.
function quantiles(series, name, match) {
  const list = pick(series, name, match);
  if (!list.length) return null;
  const m = list[0];
  const p = before(name, m);
  let buckets = m.buckets.map((b) => ({ le: b.le, count: b.count }));
  let window = false;
  if (p && m.count - p.count > 0) {
    buckets = buckets.map((b, i) => ({ le: b.le, count: b.count - p.buckets[i].count }));
    window = true;
  }
  const total = buckets.length ? buckets[buckets.length - 1].count : 0;
  if (total <= 0) return { p50: null, p90: null, p99: null, window };
  const q = (phi) => {
    const rank = phi * total;
    let lo = 0, below = 0;
    for (const b of buckets) {
      if (b.count >= rank) {
        if (b.le === "+Inf") return lo; // above the highest bound: report that bound
        const inBucket = b.count - below;
        return inBucket > 0 ? lo + (b.le - lo) * ((rank - below) / inBucket) : b.le;
      }
      if (b.le !== "+Inf") lo = b.le;
      below = b.count;
    }
    return lo;
  };
  return { p50: q(0.5), p90: q(0.9), p99: q(0.99), window };
}
function latencyCells(qs) {
  if (!qs) return '<td class="num">–</td><td class="num">–</td><td class="num">–</td>';
  const cls = qs.window ? "num" : "num muted";
  const title = qs.window ? "last poll interval" : "since start (no request in the last interval)";
  return [qs.p50, qs.p90, qs.p99].map((v) =>
    `<td class="${cls}" title="${title}">${fmtSecs(v)}</td>`).join("");
}
function codeRates(series, name, match, now) {
  return ["2xx", "3xx", "4xx", "5xx"].map((code) => {
    const r = rate(series, name, Object.assign({ code }, match), now);
    const cls = code === "5xx" && r > 0 ? "num bad" : "num";
    return `<td class="${cls}">${fmtRate(r)}</td>`;
  }).join("");
}

function renderListeners(status, series, now) {
  const ls = status.listeners || [];
  if (!ls.length) { $("listeners").innerHTML = '<div class="empty">no listener</div>'; return; }
  let h = '<table><tr><th>name</th><th>address</th><th class="num">req/s</th>' +
    '<th class="num">2xx/s</th><th class="num">3xx/s</th><th class="num">4xx/s</th>' +
    '<th class="num">5xx/s</th><th class="num">requests</th><th class="num">connections</th>' +
    '<th class="num">p50</th><th class="num">p90</th><th class="num">p99</th></tr>';
  for (const l of ls) {
    const m = { listener: l.name };
    const total = sum(pick(series, "sluice_downstream_requests_total", m));
    const conns = sum(pick(series, "sluice_downstream_connections_active", m));
    h += `<tr data-listener="${esc(l.name)}"><td><b>${esc(l.name)}</b></td>` +
      `<td><code>${esc(l.address)}</code></td>` +
      `<td class="num">${fmtRate(rate(series, "sluice_downstream_requests_total", m, now))}</td>` +
      codeRates(series, "sluice_downstream_requests_total", m, now) +
      `<td class="num">${fmtCount(total)}</td><td class="num">${fmtCount(conns)}</td>` +
      latencyCells(quantiles(series, "sluice_downstream_request_duration_seconds", m)) + "</tr>";
  }
  $("listeners").className = "";
  $("listeners").innerHTML = h + "</table>";
}

function renderClusters(clusters, series, now) {
  if (!clusters) {
    $("clusters").className = "empty";
    $("clusters").textContent = "the config is not live yet";
    return;
  }
  if (!clusters.clusters.length) {
    $("clusters").className = "empty";
    $("clusters").textContent = "no cluster";
    return;
  }
  let h = "";
  for (const c of clusters.clusters) {
    const m = { cluster: c.name };
    const eps = c.endpoints;
    const healthy = eps.filter((e) => e.healthy && !e.ejected && !e.draining).length;
    const cls = healthy === eps.length ? "ok" : healthy === 0 ? "bad" : "warn";
    const errs = pick(series, "sluice_upstream_errors_total", m)
      .filter((e) => e.value > 0).map((e) => `${esc(e.labels.kind)} ${fmtCount(e.value)}`);
    const qs = quantiles(series, "sluice_upstream_request_duration_seconds", m);
    h += `<div class="cluster" data-cluster="${esc(c.name)}"><h3>${esc(c.name)}` +
      ` <span class="badge ${cls}">${healthy}/${eps.length} available</span>` +
      ` <span class="sub">${esc(c.lb_policy)} · ` +
      `${fmtRate(rate(series, "sluice_upstream_requests_total", m, now))} req/s · ` +
      `${fmtCount(sum(pick(series, "sluice_upstream_requests_total", m)))} requests · ` +
      `p50 ${fmtSecs(qs && qs.p50)} · p99 ${fmtSecs(qs && qs.p99)}` +
      (errs.length ? ` · <span class="rem">errors: ${errs.join(", ")}</span>` : "") +
      `</span></h3>`;
    h += '<table><tr><th>endpoint</th><th>health</th><th>state</th><th class="num">weight</th>' +
      '<th class="num">active requests</th><th class="num">connections</th>' +
      '<th class="num">ejections</th></tr>';
    for (const e of eps) {
      const state = [];
      if (e.draining) state.push('<span class="badge warn">draining</span>');
      if (e.ejected) state.push(`<span class="badge bad">ejected ${fmtSecs(e.ejected_for_ms / 1000)}</span>`);
      if (e.resolved === false) state.push('<span class="badge warn">unresolved</span>');
      const addr = e.resolved_address && e.resolved_address !== e.address
        ? `${esc(e.address)} <span class="muted">(${esc(e.resolved_address)})</span>` : esc(e.address);
      h += `<tr class="endpoint" data-cluster="${esc(c.name)}" data-endpoint="${esc(e.address)}"` +
        ` data-healthy="${e.healthy}"><td><code>${addr}</code></td>` +
        `<td><span class="badge health ${e.healthy ? "ok" : "bad"}">` +
        `${e.healthy ? "healthy" : "unhealthy"}</span></td>` +
        `<td>${state.join(" ") || '<span class="muted">serving</span>'}</td>` +
        `<td class="num">${e.weight}</td><td class="num">${e.active_requests}</td>` +
        `<td class="num">${e.active_connections}</td><td class="num">${e.ejections || 0}</td></tr>`;
    }
    h += "</table></div>";
  }
  $("clusters").className = "";
  $("clusters").innerHTML = h;
}

function renderAgents(series, now) {
  const list = (series["sluice_ai_agent_requests_total"] || []).filter((m) => m.value > 0);
  if (!list.length) {
    $("agents").className = "empty";
    $("agents").textContent = (series["sluice_ai_agent_requests_total"] || []).length
      ? "no AI agent seen yet" : "no ai_agent_tagger filter configured";
    return;
  }
  // Purpose per agent from the tagger's info series (sluice_ai_agent_info{provider,agent,purpose}).
  const purposeOf = {};
  for (const i of series["sluice_ai_agent_info"] || []) {
    purposeOf[i.labels.provider + "\u0000" + i.labels.agent] = i.labels.purpose;
  }
  const purpose = (m) => purposeOf[m.labels.provider + "\u0000" + m.labels.agent] || "other";
  const providers = {};
  const purposes = {};
  for (const m of list) {
    providers[m.labels.provider] = (providers[m.labels.provider] || 0) + m.value;
    purposes[purpose(m)] = (purposes[purpose(m)] || 0) + m.value;
  }
  const top = list.slice().sort((a, b) => b.value - a.value).slice(0, 10);
  const max = top[0].value;
  let h = '<table><tr><th>agent</th><th>provider</th><th>purpose</th><th class="num">requests</th>' +
    '<th class="num">req/s</th><th style="width:30%"></th></tr>';
  for (const m of top) {
    const r = rate(series, "sluice_ai_agent_requests_total",
      { provider: m.labels.provider, agent: m.labels.agent }, now);
    h += `<tr class="agent"><td><b>${esc(m.labels.agent)}</b></td><td>${esc(m.labels.provider)}</td>` +
      `<td class="purpose">${esc(purpose(m))}</td><td class="num">${fmtCount(m.value)}</td><td class="num">${fmtRate(r)}</td>` +
      `<td><div class="bar" style="width:${(100 * m.value / max).toFixed(1)}%"></div></td></tr>`;
  }
  h += '</table><h3>By provider</h3><table><tr><th>provider</th><th class="num">requests</th></tr>';
  for (const [p, v] of Object.entries(providers).sort((a, b) => b[1] - a[1])) {
    h += `<tr><td>${esc(p)}</td><td class="num">${fmtCount(v)}</td></tr>`;
  }
  h += '</table><h3>By purpose</h3><table><tr><th>purpose</th><th class="num">requests</th></tr>';
  for (const [p, v] of Object.entries(purposes).sort((a, b) => b[1] - a[1])) {
    h += `<tr class="by-purpose"><td>${esc(p)}</td><td class="num">${fmtCount(v)}</td></tr>`;
  }
  $("agents").className = "";
  $("agents").innerHTML = h + "</table>";
}

function changeList(ch) {
  if (!ch) return "";
  const parts = [];
  for (const what of ["listeners", "clusters", "routes"]) {
    const s = ch[what];
    if (!s) continue;
    for (const n of s.added) parts.push(`<span class="add">+${what.slice(0, -1)} ${esc(n)}</span>`);
    for (const n of s.removed) parts.push(`<span class="rem">−${what.slice(0, -1)} ${esc(n)}</span>`);
    for (const n of s.changed) parts.push(`<span class="chg">~${what.slice(0, -1)} ${esc(n)}</span>`);
  }
  const restart = ch.restart_required || [];
  for (const n of ch.settings || []) {
    parts.push(restart.includes(n) ? `<span class="rem">~${esc(n)} (needs a restart)</span>`
                                   : `<span class="chg">~${esc(n)}</span>`);
  }
  return parts.join("");
}

function renderReloads(status) {
  const rs = status.reloads || [];
  if (!rs.length) { $("reloads").className = "empty"; $("reloads").textContent = "none yet"; return; }
  let h = '<table><tr><th>time (UTC)</th><th class="num">gen</th><th>result</th><th>what changed</th></tr>';
  for (const r of rs) {
    const t = r.time.replace("T", " ").replace(/\.\d+Z$/, "");
    const what = r.result === "success"
      ? (r.initial ? '<span class="muted">started</span>' : changeList(r.changes) ||
        '<span class="muted">no changes</span>')
      : `<span class="rem">${esc(r.errors.join("; "))}</span>`;
    h += `<tr class="reload"><td>${esc(t)}</td><td class="num">${r.generation === null ? "–" : r.generation}</td>` +
      `<td><span class="badge ${r.result === "success" ? "ok" : "bad"}">${esc(r.result)}</span></td>` +
      `<td class="changes" style="white-space:normal">${what}</td></tr>`;
  }
  $("reloads").className = "";
  $("reloads").innerHTML = h + "</table>";
}

function showLogin(message) {
  $("main").style.display = "none";
  $("forget").style.display = "none";
  $("meta").style.visibility = "hidden";
  $("banner").style.display = "none";
  $("login").style.display = "block";
  $("loginerr").textContent = message || "";
  $("key").focus();
}

async function poll() {
  clearTimeout(timer);
  try {
    const [status, clusters, stats] = await Promise.all([get("/status"), get("/clusters"), get("/stats")]);
    const now = Date.now();
    const series = index(stats);
    $("login").style.display = "none";
    $("forget").style.display = key ? "" : "none";
    $("meta").style.visibility = "";
    $("main").style.display = "";
    $("banner").style.display = "none";
    const st = $("state");
    st.textContent = status.ready ? "ready" : "not ready" + (status.not_ready_reason ? ": " + status.not_ready_reason : "");
    st.className = status.ready ? "" : "rem";
    $("generation").textContent = status.generation === null ? "–" : status.generation;
    $("uptime").textContent = fmtUptime(status.uptime_ms);
    $("version").textContent = status.version;
    $("updated").textContent = new Date(now).toLocaleTimeString();
    renderListeners(status, series, now);
    renderClusters(clusters, series, now);
    renderAgents(series, now);
    renderReloads(status);
    prev = { t: now, series };
    document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
  } catch (e) {
    if (e instanceof AuthError) {
      const had = key !== "";
      key = "";
      sessionStorage.removeItem(KEY_ITEM);
      showLogin(had ? "That key was refused." : "");
      return; // polling resumes once a key is entered
    }
    $("banner").style.display = "block";
    $("banner").textContent = "Cannot reach the admin port (" + e.message + "); retrying.";
  }
  timer = setTimeout(poll, POLL_MS);
}

$("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  key = $("key").value.trim();
  $("key").value = "";
  if (!key) { $("loginerr").textContent = "Enter the key."; return; }
  sessionStorage.setItem(KEY_ITEM, key);
  prev = null;
  poll();
});
window.addEventListener("hashchange", () => {
  if (keyFromFragment()) {
    prev = null;
    poll();
  }
});
$("forget").addEventListener("click", () => {
  key = "";
  sessionStorage.removeItem(KEY_ITEM);
  clearTimeout(timer);
  poll();
});
poll();
</script>
</body>
</html>
)HTML";

} // namespace

std::string_view statusPageHtml() {
  return kPage;
}

} // namespace sluice::admin

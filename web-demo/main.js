// The resilience lab's page: runs both strategies of the same Rust crawler
// (compiled to wasm) and renders their reports as they arrive.
import init, { run_lab, hosts, crawl_http, crawl_http_naive, stop_http } from "./pkg/staunch_demo.js";

const $ = (sel) => document.querySelector(sel);
const status = $("#status");
const button = $("#run");

function setStatus(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

function renderHosts(hostList, reports) {
  const body = $("#host-table tbody");
  body.replaceChildren();
  for (const h of hostList) {
    const row = document.createElement("tr");
    const count = (r) => {
      if (!r) return "–";
      const s = r.hosts.find((x) => x.host === h.name);
      return s ? `${s.ok} / ${s.failed}` : "0 / 0";
    };
    const breaker = reports?.staunch?.hosts.find((x) => x.host === h.name)?.breaker ?? "–";
    for (const text of [h.name, h.behaviour, count(reports?.naive), count(reports?.staunch), breaker]) {
      const td = document.createElement("td");
      td.textContent = text;
      row.append(td);
    }
    body.append(row);
  }
}

function renderSummary(id, report) {
  const dl = document.querySelector(`#${id} .summary`);
  dl.replaceChildren();
  const rows = [
    ["pages fetched", report.ok],
    ["pages failed", report.failed],
    ["refused by open breakers", report.rejected],
    ["cut off by the budget", report.cancelled],
    ["fetch attempts", report.attempts],
    ["time", `${report.elapsed_ms} ms`],
  ];
  for (const [k, v] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    dd.dataset.key = k;
    dl.append(dt, dd);
  }
}

function logLine(id, event) {
  const li = document.createElement("li");
  li.className = event.outcome;
  li.textContent = `${event.at_ms} ms  ${event.url}  ${event.outcome}${event.detail ? ": " + event.detail : ""}`;
  const log = document.querySelector(`#${id} .log`);
  log.append(li);
  log.scrollTop = log.scrollHeight;
}

async function runBoth() {
  button.disabled = true;
  setStatus("running", "crawling…");
  for (const id of ["naive", "staunch"]) {
    document.querySelector(`#${id} .log`).replaceChildren();
    document.querySelector(`#${id} .summary`).replaceChildren();
  }
  const seed = BigInt($("#seed").value || "7");
  const pages = Number($("#pages").value || "48");
  const budget = Number($("#budget").value || "3000");
  try {
    const [naive, staunch] = await Promise.all(
      ["naive", "staunch"].map(async (strategy) => {
        const json = await run_lab(strategy, seed, pages, budget, (e) => logLine(strategy, JSON.parse(e)));
        const report = JSON.parse(json);
        renderSummary(strategy, report);
        return report;
      }),
    );
    renderHosts(JSON.parse(hosts()), { naive, staunch });
    const summary = $("#summary");
    summary.dataset.ready = "true";
    summary.dataset.naiveOk = naive.ok;
    summary.dataset.staunchOk = staunch.ok;
    summary.dataset.staunchElapsed = staunch.elapsed_ms;
    summary.dataset.budget = budget;
    summary.textContent = `staunch fetched ${staunch.ok} pages in ${staunch.elapsed_ms} ms; naive fetched ${naive.ok} in ${naive.elapsed_ms} ms.`;
    setStatus("done", "done");
  } catch (err) {
    setStatus("error", `error: ${err}`);
    throw err;
  } finally {
    button.disabled = false;
  }
}

await init();
renderHosts(JSON.parse(hosts()), null);
button.textContent = "run the crawl";
button.disabled = false;
button.addEventListener("click", runBoth);
setStatus("ready", "ready");

const SVG = "http://www.w3.org/2000/svg";
function svgEl(name, attrs, text) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}
const STATE_COLOURS = { closed: "#3a3", open: "#c33", "half-open": "#e90", "forced open": "#933", "forced closed": "#363" };

// One row per host: a bar per stretch of time in one breaker state.
function drawBreakers(report) {
  const svg = $("#http-breakers");
  svg.replaceChildren();
  const left = 180, width = 700 - left, row = 22;
  const total = Math.max(1, report.elapsed_ms);
  svg.setAttribute("height", String(report.hosts.length * row + 20));
  report.hosts.forEach((h, i) => {
    const y = i * row;
    svg.append(svgEl("text", { x: 0, y: y + 15, "font-size": 11 }, h.url.replace("http://", "")));
    const stretches = [[0, "closed"], ...h.transitions];
    stretches.forEach(([at, state], k) => {
      const end = k + 1 < stretches.length ? stretches[k + 1][0] : total;
      const x = left + (at / total) * width;
      const w = Math.max(1, ((end - at) / total) * width);
      const key = String(state).toLowerCase();
      svg.append(svgEl("rect", { x, y: y + 3, width: w, height: row - 6, fill: STATE_COLOURS[key] ?? "#888", "data-state": key }));
    });
  });
  svg.append(svgEl("text", { x: left, y: report.hosts.length * row + 15, "font-size": 11 }, `0 … ${total} ms  (green closed, red open, orange half-open)`));
}

function drawLatency(buckets) {
  const svg = $("#http-latency");
  svg.replaceChildren();
  const most = Math.max(1, ...buckets);
  const barWidth = 700 / buckets.length;
  buckets.forEach((n, i) => {
    const h = (n / most) * 110;
    svg.append(svgEl("rect", { x: i * barWidth + 2, y: 115 - h, width: barWidth - 4, height: h, fill: "#468", "data-count": n }));
    if (i % 4 === 0) svg.append(svgEl("text", { x: i * barWidth + 2, y: 132, "font-size": 10 }, i === buckets.length - 1 ? "1 s+" : `${i * 50} ms`));
  });
}

// The real-HTTP crawl: shown when the page is opened with
// `?hosts=http://127.0.0.1:8091,...` (what `cargo xtask demo` prints).
const serviceHosts = new URLSearchParams(location.search).get("hosts");
if (serviceHosts) {
  $("#http").hidden = false;
  $("#http-hosts").textContent = serviceHosts.split(",").length + " hosts";
  const httpStatus = $("#http-status");
  const setHttp = (state, text) => {
    httpStatus.dataset.state = state;
    httpStatus.textContent = text;
  };
  $("#http-stop").addEventListener("click", () => {
    if (stop_http()) setHttp("stopping", "stopping: aborting fetches in flight…");
  });
  $("#http-run").addEventListener("click", async () => {
    const pages = Number($("#http-pages").value);
    const log = $("#http-log");
    log.replaceChildren();
    const progress = $("#http-progress");
    progress.max = pages;
    progress.value = 0;
    $("#http-run").disabled = true;
    $("#http-stop").disabled = false;
    setHttp("running", "crawling over HTTP…");
    let events = 0;
    try {
      const json = await crawl_http(
        serviceHosts, BigInt($("#seed").value || "7"), pages,
        Number($("#http-concurrency").value), Number($("#http-fail").value),
        Number($("#http-latency-ms").value), Number($("#http-timeout").value),
        Number($("#http-attempts").value), Number($("#http-threshold").value),
        (text) => {
          events++;
          if (text.startsWith("AttemptStarted")) progress.value = Math.min(pages, progress.value + 0.34);
          if (events <= 400) {
            const li = document.createElement("li");
            li.textContent = text;
            log.append(li);
          }
        },
      );
      const report = JSON.parse(json);
      progress.value = pages;
      const body = $("#http-table tbody");
      body.replaceChildren();
      for (const h of report.hosts) {
        const row = document.createElement("tr");
        for (const t of [h.url, h.sent, h.ok, h.rejected, h.breaker]) {
          const td = document.createElement("td");
          td.textContent = t;
          row.append(td);
        }
        body.append(row);
      }
      drawBreakers(report);
      drawLatency(report.latency_50ms);
      const section = $("#http");
      section.dataset.ok = report.ok;
      section.dataset.failed = report.failed;
      section.dataset.cancelled = report.cancelled;
      section.dataset.requests = report.requests;
      section.dataset.rejected = report.rejected;
      section.dataset.waitAfter429 = report.shortest_wait_after_429_ms ?? "";
      section.dataset.hostSent = report.hosts.map((h) => h.sent).join(",");
      setHttp("done", `fetched ${report.ok}, failed ${report.failed}, refused ${report.rejected}, cancelled ${report.cancelled} in ${report.elapsed_ms} ms`);
      showComparison("staunch", report);
    } catch (err) {
      setHttp("error", `error: ${err}`);
    } finally {
      $("#http-run").disabled = false;
      $("#http-stop").disabled = true;
    }
  });

  // The naive crawl of the same service, summarised beside staunch's.
  const compared = {};
  function showComparison(strategy, report) {
    compared[strategy] = report;
    const line = (name, r) => r
      ? `${name}: fetched ${r.ok}, failed ${r.failed}, refused ${r.rejected}, cancelled ${r.cancelled} in ${r.elapsed_ms} ms (${r.requests} requests)`
      : `${name}: not run yet`;
    const el = $("#http-compare");
    el.textContent = `${line("staunch", compared.staunch)} · ${line("naive", compared.naive)}`;
    el.dataset.ready = String(Boolean(compared.staunch && compared.naive));
  }
  $("#http-naive-run").addEventListener("click", async () => {
    $("#http-run").disabled = true;
    $("#http-naive-run").disabled = true;
    $("#http-stop").disabled = false;
    setHttp("running", "naive crawl over HTTP…");
    try {
      const report = JSON.parse(await crawl_http_naive(
        serviceHosts, BigInt($("#seed").value || "7"), Number($("#http-pages").value),
        Number($("#http-fail").value), Number($("#http-latency-ms").value), Number($("#http-budget").value),
      ));
      const naive = $("#http-compare");
      naive.dataset.naiveOk = report.ok;
      naive.dataset.naiveFailed = report.failed;
      naive.dataset.naiveCancelled = report.cancelled;
      naive.dataset.naiveRequests = report.requests;
      naive.dataset.naiveRetries = report.retries;
      naive.dataset.naiveElapsed = report.elapsed_ms;
      setHttp("done", `naive: fetched ${report.ok}, failed ${report.failed}, cancelled ${report.cancelled} in ${report.elapsed_ms} ms`);
      showComparison("naive", report);
    } catch (err) {
      setHttp("error", `error: ${err}`);
    } finally {
      $("#http-run").disabled = false;
      $("#http-naive-run").disabled = false;
      $("#http-stop").disabled = true;
    }
  });
}

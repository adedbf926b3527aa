// The resilience lab's browser test: loads the page in Debian's headless
// Chromium, runs the crawl like a person would (click), and checks what the
// page shows. Prints libtest-style result lines so `cargo xtask test` can
// count them.
import { chromium } from "playwright-core";

const url = process.env.DEMO_URL ?? "http://127.0.0.1:8080/";
const screenshot = process.env.SCREENSHOT ?? "demo-screenshot.png";
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";

let passed = 0;
let failed = 0;
function check(name, ok, detail = "") {
  if (ok) {
    passed++;
    console.log(`test ${name} ... ok`);
  } else {
    failed++;
    console.log(`test ${name} ... FAILED ${detail}`);
  }
}

const browser = await chromium.launch({
  executablePath,
  args: [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--disable-quic",
  ],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(url);
  await page.waitForSelector("#status[data-state='ready']", { timeout: 30_000 });
  check("the_page_loads_the_wasm_module", true);
  const hostRows = await page.locator("#host-table tbody tr").count();
  check("the_page_lists_the_simulated_hosts", hostRows === 6, `rows=${hostRows}`);

  await page.fill("#budget", "2500");
  await page.click("#run");
  await page.waitForSelector("#status[data-state='done'], #status[data-state='error']", { timeout: 60_000 });
  const state = await page.getAttribute("#status", "data-state");
  check("the_crawl_finishes_without_error", state === "done", await page.textContent("#status"));

  const data = await page.$eval("#summary", (el) => ({ ...el.dataset }));
  const staunchOk = Number(data.staunchOk);
  const naiveOk = Number(data.naiveOk);
  check("staunch_fetches_pages", staunchOk > 0, JSON.stringify(data));
  check("staunch_fetches_more_pages_than_the_naive_crawl", staunchOk > naiveOk, JSON.stringify(data));
  check("staunch_finishes_within_its_budget", Number(data.staunchElapsed) <= Number(data.budget) + 500, JSON.stringify(data));
  const logLines = await page.locator("#staunch .log li").count();
  check("the_page_shows_each_fetch_as_it_happens", logLines >= staunchOk, `log lines=${logLines}`);
  const rejected = await page.locator("#staunch .log li.rejected").count();
  check("open_breakers_refuse_calls_to_dead_hosts", rejected > 0, `rejected=${rejected}`);
  check("no_uncaught_errors_in_the_page", errors.length === 0, errors.join("; "));
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`screenshot: ${screenshot}`);

  // The real-HTTP panel, against the flaky service the xtask started.
  const labHosts = process.env.LAB_HOSTS;
  if (labHosts) {
    // `/stats` on any host reports every host.
    const stats = async () => {
      const rows = await (await fetch(`${labHosts.split(",")[0]}/stats`)).json();
      const sum = (k) => rows.reduce((n, row) => n + (row[k] ?? 0), 0);
      return { received: sum("received"), aborted: sum("aborted") };
    };
    const before = await stats();
    const real = await browser.newPage();
    real.on("pageerror", (e) => errors.push(String(e)));
    await real.goto(`${url}?hosts=${encodeURIComponent(labHosts)}`);
    await real.waitForSelector("#status[data-state='ready']", { timeout: 30_000 });
    check("the_real_http_panel_shows_with_service_hosts", await real.isVisible("#http"));
    await real.fill("#http-pages", "40");
    await real.fill("#http-timeout", "300");
    await real.click("#http-run");
    await real.waitForSelector("#http-status[data-state='done'], #http-status[data-state='error']", { timeout: 60_000 });
    const crawled = await real.$eval("#http", (el) => ({ ...el.dataset }));
    check("the_page_crawls_over_real_fetch", Number(crawled.ok) > 0 && Number(crawled.requests) > 0,
      `${JSON.stringify(crawled)} ${await real.textContent("#http-status")}`);
    const bars = await real.locator("#http-breakers rect").count();
    const openBars = await real.locator("#http-breakers rect[data-state='open']").count();
    const latencyBars = await real.locator("#http-latency rect").count();
    check("the_page_charts_breaker_states_and_latency", bars >= 7 && openBars > 0 && latencyBars === 21,
      `breaker bars ${bars}, open ${openBars}, latency bars ${latencyBars}`);
    await real.screenshot({ path: screenshot.replace(/\.png$/, "-http.png"), fullPage: true });
    const afterCrawl = await stats();
    // Every count adds up: the service received exactly what the page sent
    // (refused calls never left the page), give or take the /stats reads.
    const received = afterCrawl.received - before.received;
    console.log(`real crawl: ${JSON.stringify(crawled)}; service received ${received}`);
    const sentPerHost = crawled.hostSent.split(",").map(Number).reduce((a, b) => a + b, 0);
    check("the_service_counted_the_pages_requests",
      received >= Number(crawled.requests) && received <= Number(crawled.requests) + 2 && sentPerHost === Number(crawled.requests),
      `service received ${received}, page sent ${crawled.requests} (per host ${sentPerHost}), refused ${crawled.rejected}`);
    check("retries_after_a_429_waited_at_least_retry_after",
      crawled.waitAfter429 === "" || Number(crawled.waitAfter429) >= 1000,
      `shortest wait after a 429: ${crawled.waitAfter429} ms`);
    // The naive crawl of the same service beside it: one plain GET per page
    // (no retry, no breaker), hung on the tarpit until its budget, whose
    // requests are then aborted at the service; staunch fetched more.
    await real.fill("#http-budget", "2000");
    const beforeNaive = await stats();
    await real.click("#http-naive-run");
    await real.waitForSelector("#http-status[data-state='done'], #http-status[data-state='error']", { timeout: 60_000 });
    const naive = await real.$eval("#http-compare", (el) => ({ ...el.dataset }));
    await real.waitForTimeout(300);
    const afterNaive = await stats();
    const naiveReceived = afterNaive.received - beforeNaive.received;
    console.log(`naive crawl: ${JSON.stringify(naive)}; service received ${naiveReceived}, aborted ${afterNaive.aborted - beforeNaive.aborted}`);
    check("the_naive_crawl_runs_over_real_http_beside_staunch",
      naive.ready === "true" && Number(naive.naiveRequests) > 0 && Number(naive.naiveRetries) === 0
        && naiveReceived >= Number(naive.naiveRequests) && naiveReceived <= Number(naive.naiveRequests) + 2,
      `${JSON.stringify(naive)}; service received ${naiveReceived}; ${await real.textContent("#http-status")}`);
    check("the_naive_crawl_hangs_on_the_tarpit_until_its_budget",
      Number(naive.naiveCancelled) > 0 && Number(naive.naiveElapsed) >= 2000 && afterNaive.aborted > beforeNaive.aborted,
      `${JSON.stringify(naive)}; aborted ${afterNaive.aborted - beforeNaive.aborted}`);
    check("staunch_fetches_more_pages_than_the_naive_crawl_over_http",
      Number(crawled.ok) > Number(naive.naiveOk), `staunch ${crawled.ok}, naive ${naive.naiveOk}`);
    await real.screenshot({ path: screenshot.replace(/\.png$/, "-http.png"), fullPage: true });
    // Stop mid-crawl with a long timeout: requests to the tarpit are in flight
    // and must be aborted, not failed.
    await real.fill("#http-pages", "400");
    await real.fill("#http-timeout", "20000");
    const beforeStop = await stats();
    await real.click("#http-run");
    await real.waitForTimeout(800);
    await real.click("#http-stop");
    await real.waitForSelector("#http-status[data-state='done'], #http-status[data-state='error']", { timeout: 30_000 });
    const stopped = await real.$eval("#http", (el) => ({ ...el.dataset }));
    check("stop_cancels_the_crawl_and_counts_cancelled_pages", Number(stopped.cancelled) > 0,
      `${JSON.stringify(stopped)} ${await real.textContent("#http-status")}`);
    await real.waitForTimeout(300);
    const afterStop = await stats();
    check("stop_aborts_fetches_in_flight_at_the_service", afterStop.aborted > beforeStop.aborted,
      `aborted before ${beforeStop.aborted}, after ${afterStop.aborted}`);
    // Nonsense input gets a message on the page, never a panic.
    await real.fill("#http-concurrency", "0");
    await real.click("#http-run");
    await real.waitForSelector("#http-status[data-state='error']", { timeout: 10_000 });
    const zero = await real.textContent("#http-status");
    await real.fill("#http-concurrency", "8");
    await real.fill("#http-fail", "250");
    await real.click("#http-run");
    await real.waitForSelector("#http-status[data-state='error']", { timeout: 10_000 });
    const over = await real.textContent("#http-status");
    await real.fill("#http-fail", "30");
    await real.fill("#http-concurrency", "-4");
    await real.click("#http-run");
    await real.waitForSelector("#http-status[data-state='error']", { timeout: 10_000 });
    const negative = await real.textContent("#http-status");
    check("nonsense_settings_get_a_message_not_a_panic",
      zero.includes("concurrency") && over.includes("failure rate") && negative.includes("concurrency"),
      `${zero} | ${over} | ${negative}`);
    check("no_uncaught_errors_in_the_real_http_page", errors.length === 0, errors.join("; "));
  }
} catch (e) {
  failed++;
  console.log(`test browser_session ... FAILED ${e}`);
} finally {
  await browser.close();
}
console.log(`\ntest result: ${failed ? "FAILED" : "ok"}. ${passed} passed; ${failed} failed; 0 ignored`);
process.exit(failed ? 1 : 0);

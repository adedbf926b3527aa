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
} catch (e) {
  failed++;
  console.log(`test browser_session ... FAILED ${e}`);
} finally {
  await browser.close();
}
console.log(`\ntest result: ${failed ? "FAILED" : "ok"}. ${passed} passed; ${failed} failed; 0 ignored`);
process.exit(failed ? 1 : 0);

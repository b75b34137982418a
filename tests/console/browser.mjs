// Drives Debian's chromium (headless, through playwright-core) against a running console
// for tests/console_browser_test.cc. Prints one JSON document on stdout.
//   node browser.mjs BASE OUTDIR overview
//   node browser.mjs BASE OUTDIR stream AGENT EPOCH
//   node browser.mjs BASE OUTDIR wait-state STREAM STATE TEXT TIMEOUT_MS  (the open page updates)
//   node browser.mjs BASE OUTDIR proof AGENT EPOCH SEQ FILE
//   node browser.mjs BASE OUTDIR pages
import { chromium } from 'playwright-core';

const [base, outdir, command, ...args] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
const page = await context.newPage();
const errors = [];
page.on('pageerror', (e) => errors.push(String(e)));
let out = {};
try {
  if (command === 'overview') {
    await page.goto(base + '/#/overview');
    await page.waitForSelector('#ov-rows tr[data-stream]');
    out.rows = await page.$$eval('#ov-rows tr[data-stream]', (trs) => trs.map((tr) => {
      const row = { stream: tr.dataset.stream, state: tr.querySelector('[data-state]').dataset.state };
      for (const td of tr.querySelectorAll('[data-k]')) row[td.dataset.k] = Number(td.textContent);
      return row;
    }));
    out.totals = await page.$$eval('[data-total]', (bs) => Object.fromEntries(bs.map((b) => [b.dataset.total, Number(b.textContent)])));
    await page.screenshot({ path: outdir + '/overview.png', fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: outdir + '/overview-phone.png', fullPage: true });
  } else if (command === 'stream') {
    await page.goto(base + `/#/stream/${encodeURIComponent(args[0])}/${encodeURIComponent(args[1])}`);
    await page.waitForSelector('[data-verdict]');
    out.verdict = await page.textContent('[data-verdict]');
    out.over_time_segments = await page.$$eval('svg[data-chart="over-time"] rect[fill="#1e7b34"]', (r) => r.length);
    out.missing = await page.$$eval('li[data-missing]', (lis) => lis.map((li) => ({
      range: li.dataset.missing, declared: li.dataset.declared === 'true',
      reason: li.querySelector('[data-reason]') ? li.querySelector('[data-reason]').textContent : '' })));
    await page.screenshot({ path: outdir + '/stream.png', fullPage: true });
  } else if (command === 'wait-state') {
    // The page is loaded once; it must update by itself (polling every 2 s).
    await page.goto(base + '/#/overview');
    const [stream, want, text, timeout] = args;
    await page.waitForSelector('#ov-rows tr[data-stream]');
    const start = Date.now();
    await page.waitForFunction(([stream, want, text]) => {
      const tr = document.querySelector(`#ov-rows tr[data-stream="${stream}"]`);
      return tr && tr.querySelector(`[data-state="${want}"]`) && tr.children[2].textContent.includes(text);
    }, [stream, want, text], { timeout: Number(timeout), polling: 100 });
    out.after_ms = Date.now() - start;
    out.reason = await page.textContent(`#ov-rows tr[data-stream="${stream}"] td:nth-child(3)`);
    await page.screenshot({ path: outdir + '/overview-' + want + '.png', fullPage: true });
  } else if (command === 'proof') {
    const [agent, epoch, seq, file] = args;
    await page.goto(base + `/#/stream/${encodeURIComponent(agent)}/${encodeURIComponent(epoch)}`);
    await page.waitForSelector('[data-verdict]');
    await page.fill('#inc-seq', seq);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#inc button')]);
    await download.saveAs(file);
    out.saved = file;
    out.message = await page.textContent('#proof-msg');
  } else if (command === 'pages') {
    for (const name of ['sources', 'alerts', 'outputs', 'search']) {
      await page.goto(base + '/#/' + name);
      await page.waitForSelector('h1');
      await page.waitForTimeout(500);
      await page.screenshot({ path: `${outdir}/${name}.png`, fullPage: true });
    }
    await page.click('#sq button');
    await page.waitForSelector('#sr table');
    out.search_results = await page.$$eval('#sr tbody tr', (trs) => trs.length);
    await page.screenshot({ path: `${outdir}/search-results.png`, fullPage: true });
    // Keyboard: the first Tab reaches the first page link, Enter follows it.
    await page.goto('about:blank');
    await page.goto(base + '/#/search');
    await page.waitForSelector('#sq');
    await page.keyboard.press('Tab');
    out.first_focus = await page.evaluate(() => document.activeElement.textContent);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#ov-rows');
    out.after_enter = await page.evaluate(() => location.hash);
  } else {
    throw new Error('unknown command ' + command);
  }
} catch (e) {
  out.error = String(e);
}
out.page_errors = errors;
await browser.close();
process.stdout.write(JSON.stringify(out) + '\n');
process.exit(out.error || errors.length ? 1 : 0);

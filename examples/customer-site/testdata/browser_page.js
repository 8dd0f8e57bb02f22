// Drives the customer-site page in headless Chromium: log in, get a token
// through the page's own flow, register, wait for WAIT_REFRESHES token
// refreshes, call the echo, wait for echoed RTP, hang up. Prints one JSON
// line: {state, stats, steps}.
const { chromium } = require('playwright-core');

const refreshes = Number(process.env.WAIT_REFRESHES || '0');

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'],
  });
  const steps = [];
  try {
    const page = await browser.newPage();
    page.on('console', (m) => steps.push('console ' + m.type() + ': ' + m.text()));
    page.on('pageerror', (e) => steps.push('pageerror: ' + e.message));
    await page.goto(process.env.PAGE_URL);
    const wait = async (what, fn, arg, timeout) => {
      try {
        await page.waitForFunction(fn, arg, { timeout: timeout || 15000, polling: 100 });
        steps.push(what);
      } catch (e) {
        const st = await page.evaluate(() => window.demo && window.demo.state);
        throw new Error('waiting for ' + what + ': ' + e.message.split('\n')[0] + ' state=' + JSON.stringify(st) + ' steps=' + JSON.stringify(steps));
      }
    };
    await wait('page ready', () => window.demo && document.getElementById('status').textContent.startsWith('Not logged in'));
    await page.evaluate(() => window.demo.login('alice'));
    await wait('registered', () => window.demo.state.registered);
    if (refreshes > 0) {
      await wait('refreshed', (n) => window.demo.state.refreshes >= n && window.demo.state.registered, refreshes, 30000);
    }
    await page.click('#call');
    await wait('in call', () => window.demo.state.call === 'in call');
    await wait('echo heard', () => Number(document.getElementById('rtp-in').textContent) >= 25);
    await page.click('#hangup');
    await wait('ended', () => window.demo.state.call.startsWith('ended'));
    const out = await page.evaluate(() => ({ state: window.demo.state, stats: window.demo.stats(),
      dom: { status: document.getElementById('status').textContent, rtpIn: document.getElementById('rtp-in').textContent } }));
    out.steps = steps;
    console.log(JSON.stringify(out));
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error(e.message || e);
  process.exit(1);
});

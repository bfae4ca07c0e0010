// web_test.mjs — rackllm serve's pages in headless Chromium (puppeteer-core
// driving Debian's chromium). Run by tests/test_server_web.sh with
// RACKLLM_URL (a server: capacity 2, no queue, --api-key RACKLLM_KEY),
// RACKLLM_SHOTS (where screenshots go) and CHROMIUM. Every wait is a
// condition polled against a deadline. Checks, in order:
//   - / without the key says it needs one; with the key it shows the model;
//   - a message streams: the answer grows in the page before it is done,
//     ends with tok/s and TTFT, and equals the API's answer (temperature 0);
//   - the second turn sends the history, system prompt and stop strings;
//     HTML in a prompt or in markdown stays text (nothing runs);
//   - with two streams held open (the capacity), a message gets the page's
//     "the server is full, retry in N s";
//   - /dashboard (open in its own tab from the start) reads the two
//     sessions and their speeds, a 429 in the last minute (two since
//     start), and no session once the streams end;
//   - /plan shows both charts; no request leaves the server; no console
//     errors (but the browser's own line for the 401 and 429s asked for).
import assert from 'node:assert/strict';
import puppeteer from 'puppeteer-core';

const base = process.env.RACKLLM_URL;
const key = process.env.RACKLLM_KEY;
const shots = process.env.RACKLLM_SHOTS;
assert.ok(base && key && shots, 'RACKLLM_URL, RACKLLM_KEY and RACKLLM_SHOTS must be set');
const auth = {Authorization: `Bearer ${key}`, 'Content-Type': 'application/json'};

// Polls fn (async, truthy = done) every 50 ms for at most ms.
async function until(what, fn, ms = 60000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-proxy-server', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-extensions',
         '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
         '--disable-backgrounding-occluded-windows'],
});
const errors = [];
const outside = [];
const chatBodies = [];
// the 401 and 429s the test asks for; /plan's 503 while its charts are drawn
const expected = /^Failed to load resource: the server responded with a status of (401|429|503)/;
async function newPage() {
  const p = await browser.newPage();
  await p.setViewport({width: 1280, height: 860});
  p.on('console', (m) => { if (m.type() === 'error' && !expected.test(m.text())) errors.push(m.text()); });
  p.on('pageerror', (e) => errors.push(String(e)));
  p.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(base + '/') && !u.startsWith('blob:')) outside.push(u);
    if (u === `${base}/v1/chat/completions`) chatBodies.push(JSON.parse(r.postData()));
  });
  return p;
}
// The dashboard is open from the start (its own tab: its timeline covers
// the whole run); the chat and /plan in the other.
const board = await newPage();
await board.goto(`${base}/dashboard`);
await board.type('#api-key', key);
await board.keyboard.press('Tab');
const page = await newPage();

const text = (sel) => page.$eval(sel, (e) => e.textContent);
const lastAnswer = () => page.evaluate(() => {
  const all = document.querySelectorAll('.msg.assistant');
  const b = all[all.length - 1];
  return b ? {state: b.dataset.state || '', text: b.querySelector('.body').textContent,
              stats: b.querySelector('.stats')?.textContent || '', tps: b.querySelector('.stats')?.dataset.tps,
              tokens: b.querySelector('.stats')?.dataset.tokens, notice: b.querySelector('.notice')?.textContent || ''} : null;
});
const norm = (s) => s.replace(/\s+/g, ' ').trim();

// Records every text the last answer shows while it streams.
async function watchStreaming() {
  await page.evaluate(() => {
    window.__seen = [];
    new MutationObserver(() => {
      const all = document.querySelectorAll('.msg.assistant');
      const b = all[all.length - 1];
      if (b && b.dataset.state === 'streaming') window.__seen.push(b.querySelector('.body').textContent);
    }).observe(document.getElementById('log'), {subtree: true, childList: true, characterData: true, attributes: true});
  });
}

async function ask(message) {
  await page.type('#input', message);
  await page.keyboard.press('Enter');
  return until('the answer', async () => {
    const a = await lastAnswer();
    return a && (a.state === 'done' || a.state === 'error') ? a : null;
  });
}

// ---- the key, then a streamed answer ----
await page.goto(`${base}/`);
await until('the page to ask for a key', async () => /API key/.test(await text('#model')));
await page.type('#api-key', key);
await page.keyboard.press('Tab'); // "change"
await until('the model name', async () => (await text('#model')) === 'model stories260K');
await page.$eval('#temperature', (e) => { e.value = '0'; });
await page.$eval('#max-tokens', (e) => { e.value = '40'; });
await watchStreaming();
const first = await ask('Tell me a story about a cat.');
assert.equal(first.state, 'done', `first answer: ${JSON.stringify(first)}`);
const seen = await page.evaluate(() => window.__seen);
const partial = seen.filter((t) => t.length > 0 && norm(t).length < norm(first.text).length);
assert.ok(partial.length >= 1, `no partial text was shown while streaming (${seen.length} updates)`);
assert.match(first.stats, /^40 tokens · [0-9.]+ tok\/s · first token after [0-9.]+ s · length$/);
assert.ok(Number(first.tps) > 0, `tok/s ${first.tps}`);
const api = await (await fetch(`${base}/v1/chat/completions`, {method: 'POST', headers: auth, body: JSON.stringify({
  model: 'stories260K', messages: [{role: 'user', content: 'Tell me a story about a cat.'}], temperature: 0, max_tokens: 40})})).json();
assert.equal(norm(first.text), norm(api.choices[0].message.content), 'the page shows the API answer');

// ---- a second turn: history, system prompt, stop strings; nothing runs ----
await page.$eval('#system', (e) => { e.value = 'You tell short stories.'; });
await page.$eval('#stop', (e) => { e.value = 'The end'; });
const evil = 'And then? <img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';
const second = await ask(evil);
assert.equal(second.state, 'done');
const body = chatBodies[chatBodies.length - 1];
assert.deepEqual(body.messages.map((m) => m.role), ['system', 'user', 'assistant', 'user']);
assert.equal(body.messages[0].content, 'You tell short stories.');
assert.equal(norm(body.messages[2].content), norm(first.text));
assert.equal(body.messages[3].content, evil);
assert.deepEqual(body.stop, ['The end']);
assert.equal(body.stream, true);
const safety = await page.evaluate((evilText) => {
  const f = rl.markdown('# t\n```html\n<script>window.__pwned=3</script>\n```\n**<b>x</b>** `<i>y</i>` <img src=x onerror=alert(1)>\n- a\n- b');
  const d = document.createElement('div');
  d.append(f);
  const users = [...document.querySelectorAll('.msg.user .body')].map((e) => e.textContent);
  return {pwned: window.__pwned, tags: [...d.querySelectorAll('*')].map((e) => e.tagName.toLowerCase()).join(','),
          code: d.querySelector('pre code')?.textContent, logTags: document.querySelectorAll('#log img, #log script').length,
          shown: users.includes(evilText)};
}, evil);
assert.equal(safety.pwned, undefined);
assert.equal(safety.tags, 'h3,pre,code,p,strong,code,ul,li,li');
assert.equal(safety.code, '<script>window.__pwned=3</script>');
assert.equal(safety.logTags, 0);
assert.ok(safety.shown, 'the prompt is shown as the text it is');

// ---- two streams hold the capacity: the page's 429 ----
const held = [];
function hold() {
  const ac = new AbortController();
  const done = fetch(`${base}/v1/chat/completions`, {method: 'POST', headers: auth, signal: ac.signal, body: JSON.stringify({
    model: 'stories260K', messages: [{role: 'user', content: 'Once upon a time'}], max_tokens: 1500, ignore_eos: true, stream: true})})
    .then(async (r) => { assert.equal(r.status, 200); for await (const _ of r.body) { /* drain */ } })
    .catch((e) => { if (e.name !== 'AbortError') throw e; });
  held.push({ac, done});
}
const stats = async () => (await fetch(`${base}/v1/stats`, {headers: auth})).json();
hold();
hold();
await until('two sessions running', async () => (await stats()).active_sessions === 2);
const refused = await ask('Are you there?');
assert.equal(refused.state, 'error');
assert.match(refused.notice, /^The server is full, retry in \d+ s\.$/);
await page.screenshot({path: `${shots}/web-chat.png`});

// ---- the dashboard under load ----
await board.bringToFront();
const dash = () => board.evaluate(() => ({
  active: document.getElementById('active').dataset.value, capacity: document.getElementById('capacity').dataset.value,
  sessions: [...document.querySelectorAll('.session')].map((e) => Number(e.dataset.tps)),
  rejects: Number(document.getElementById('rejects-minute').dataset.value),
  rejectsTotal: Number(document.getElementById('rejects-total').dataset.value), time: document.getElementById('status').dataset.value,
  measured: document.getElementById('slowest').dataset.value}));
await until('two sessions and their speeds on the dashboard', async () => {
  const d = await dash();
  return d.active === '2' && d.capacity === '2' && d.sessions.length === 2 && d.sessions.every((t) => t > 0) &&
         d.measured === '2'; // both over a full window of tokens
});
const t0 = (await dash()).time;
await until('the dashboard to update', async () => (await dash()).time !== t0);
const r429 = await fetch(`${base}/v1/chat/completions`, {method: 'POST', headers: auth,
  body: JSON.stringify({model: 'stories260K', messages: [{role: 'user', content: 'hi'}], max_tokens: 4})});
assert.equal(r429.status, 429);
await until('this 429 in the last minute, two since start (the chat page\'s too)', async () => {
  const d = await dash();
  return d.rejects >= 1 && d.rejectsTotal === 2;
});
const shown = await dash();
const real = await stats();
assert.equal(real.sessions.length, 2);
assert.ok(shown.sessions.every((t) => t > 0) && real.sessions.every((s) => s.tokens_per_second > 0));
await board.screenshot({path: `${shots}/web-dashboard.png`, fullPage: true});
for (const h of held) h.ac.abort();
await Promise.all(held.map((h) => h.done));
await until('no session on the dashboard', async () => {
  const d = await dash();
  return d.active === '0' && d.sessions.length === 0;
});

// ---- /plan ----
await page.bringToFront();
await page.goto(`${base}/plan`);
await until('both charts', async () => page.evaluate(() =>
  [...document.querySelectorAll('figure.chart')].every((f) => f.dataset.state === 'shown' && f.querySelector('img').naturalWidth > 0)), 120000);
await page.screenshot({path: `${shots}/web-plan.png`, fullPage: true});

assert.deepEqual(outside, [], 'requests that left the server');
assert.deepEqual(errors, [], 'console errors');
await browser.close();
console.log('web_test: all checks passed');

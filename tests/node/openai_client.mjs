// openai_client.mjs — rackllm serve through the official `openai` npm
// client, unmodified: the model list, chat (whole and streamed, with the
// usage chunk), text completions (whole and streamed), logprobs (chat whole
// and streamed, completions), and errors surfaced as the client's own
// types (BadRequestError for a bad field or max_tokens over the cap,
// NotFoundError for an unknown model and for embeddings, RateLimitError
// when the only slot is taken). Run by
// tests/test_server_openai.sh with RACKLLM_URL set to a server with
// capacity 1 and no queue. Exits 0 when every check passes.
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const base = process.env.RACKLLM_URL;
assert.ok(base, 'RACKLLM_URL is not set');
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
let passed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
  } catch (e) {
    console.error(`FAIL: ${name}: ${e?.stack ?? e}`);
    process.exitCode = 1;
  }
}

const models = await client.models.list();
const model = models.data[0]?.id;
await check('models.list', () => {
  assert.equal(models.data.length, 1);
  assert.equal(model, 'stories260K');
  assert.equal(models.data[0].object, 'model');
});

const messages = [{ role: 'user', content: 'Tell me a story about a dog.' }];
let whole;
await check('chat, whole', async () => {
  const r = await client.chat.completions.create({ model, messages, max_tokens: 12, temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(r.choices[0].message.content.length > 0);
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 12);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  whole = r.choices[0].message.content;
});

await check('chat, streamed', async () => {
  const stream = await client.chat.completions.create({
    model, messages, max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  let text = '', finish = null, usage = null, chunks = 0, role = null;
  for await (const chunk of stream) {
    chunks++;
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta.role) role = c.delta.role;
      text += c.delta.content ?? '';
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.ok(chunks >= 3);
  assert.equal(role, 'assistant');
  assert.equal(text, whole);
  assert.equal(finish, 'length');
  assert.equal(usage?.completion_tokens, 12);
});

await check('completions, whole and streamed', async () => {
  const r = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 10, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 10);
  const s = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 10, temperature: 0, stream: true });
  let text = '';
  for await (const chunk of s) text += chunk.choices[0]?.text ?? '';
  assert.equal(text, r.choices[0].text);
});

await check('400 as BadRequestError', async () => {
  await assert.rejects(
    client.chat.completions.create({ model, messages, temperature: 9 }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'temperature' &&
      e.type === 'invalid_request_error',
  );
  await assert.rejects(client.chat.completions.create({ model, messages, repetition_penalty: 0 }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'repetition_penalty');
  await assert.rejects(client.chat.completions.create({ model, messages, max_tokens: 1501 }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'max_tokens' && /at most 1500/.test(e.message));
});

await check('404 as NotFoundError: unknown model, embeddings', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === 'model_not_found' &&
      e.param === 'model');
  await assert.rejects(client.embeddings.create({ model, input: 'a cat' }),
    (e) => e instanceof OpenAI.NotFoundError && /does not serve embeddings/.test(e.message));
});

await check('chat logprobs, whole and streamed', async () => {
  const req = { model, messages, max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 3 };
  const r = await client.chat.completions.create(req);
  const lp = r.choices[0].logprobs.content;
  assert.equal(lp.length, 8);
  assert.equal(lp.map((e) => e.token).join(''), r.choices[0].message.content);
  for (const e of lp) {
    assert.ok(e.logprob <= 0);
    assert.equal(e.top_logprobs.length, 3);
    assert.equal(e.top_logprobs[0].token, e.token); // greedy takes the most likely
    assert.equal(e.top_logprobs[0].logprob, e.logprob);
    for (let i = 1; i < 3; i++) assert.ok(e.top_logprobs[i].logprob <= e.top_logprobs[i - 1].logprob);
  }
  const s = await client.chat.completions.create({ ...req, stream: true });
  const streamed = [];
  for await (const chunk of s) streamed.push(...(chunk.choices[0]?.logprobs?.content ?? []));
  assert.deepEqual(streamed, lp);
});

await check('completions logprobs', async () => {
  const r = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 6, temperature: 0, logprobs: 2 });
  const lp = r.choices[0].logprobs;
  assert.equal(lp.tokens.join(''), r.choices[0].text);
  assert.equal(lp.token_logprobs.length, 6);
  assert.equal(lp.text_offset[0], 'Once upon a time'.length);
  lp.top_logprobs.forEach((top, i) => {
    const best = Object.entries(top).sort((a, b) => b[1] - a[1])[0];
    assert.deepEqual(best, [lp.tokens[i], lp.token_logprobs[i]]);
    assert.ok(lp.token_logprobs[i] <= 0);
  });
});

await check('429 as RateLimitError', async () => {
  const ac = new AbortController();
  const long = await client.chat.completions.create(
    { model, messages, max_tokens: 1500, stream: true, ignore_eos: true }, { signal: ac.signal });
  const it = long[Symbol.asyncIterator]();
  await it.next(); // admitted and streaming: the only slot is taken
  await assert.rejects(client.chat.completions.create({ model, messages, max_tokens: 4 }),
    (e) => e instanceof OpenAI.RateLimitError && e.status === 429 && Number(e.headers.get('retry-after')) >= 1);
  ac.abort();
  await it.return?.();
});

await check('the slot is free again', async () => {
  let ok = false;
  for (let i = 0; i < 250 && !ok; i++) { // polled, 10 s at most
    const h = await (await fetch(`${base}/health`)).json();
    ok = h.active_sessions === 0;
    if (!ok) await new Promise((r) => setTimeout(r, 40));
  }
  assert.ok(ok);
  const r = await client.chat.completions.create({ model, messages, max_tokens: 2 });
  assert.equal(r.usage.completion_tokens, 2);
});

console.log(process.exitCode ? 'openai client: failures' : `openai client: all ${passed} checks passed`);

// chat_load.mjs — a closed-loop chat load through the official `openai` npm
// client, unmodified: SESSIONS clients each send a streamed chat request,
// read it to the end and send the next at once, for DURATION seconds. Every
// prompt is different from its first word (no two share a cached prefix
// beyond the template's opening). It prints one JSON object: time to first
// token (submit to the first chunk with text) p50/p90/p99/max, each answer's
// decode speed on the client's side ((tokens - 1) / (last chunk - first
// chunk), tokens from the usage chunk), the slowest, and the counts of
// completed, refused (429/503, retried after Retry-After) and failed.
// A benchmark driver (bench/ttft.sh), not a test: it asserts nothing.
//
// usage: node chat_load.mjs URL SESSIONS DURATION_S MAX_TOKENS PROMPT_WORDS [SYSTEM_WORDS]
import OpenAI from 'openai';

const [url, sessions, duration, maxTokens, promptWords, systemWords = '0'] = process.argv.slice(2);
if (!url || !sessions || !duration || !maxTokens || !promptWords) {
  console.error('usage: node chat_load.mjs URL SESSIONS DURATION_S MAX_TOKENS PROMPT_WORDS [SYSTEM_WORDS]');
  process.exit(2);
}
const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 600000 });
const model = (await client.models.list()).data[0].id;

const WORDS = ('the a dog cat ran over under house tree river small big red blue green happy sad old new ' +
  'friend garden morning evening light dark quiet loud went saw found made took gave ' +
  'story ship road hill cloud rain sun moon star bird fish boat town').split(' ');
let seed = 12345;
function rand() { // a fixed sequence: the same prompts in every run
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
}
function words(n, first) {
  const w = [first];
  while (w.length < n) w.push(WORDS[Math.floor(rand() * WORDS.length)]);
  return w.join(' ');
}
const system = Number(systemWords) > 0 ? words(Number(systemWords), 'You') : null;

const ttft = [], speed = [], cached = [], prompt = [];
let completed = 0, refused = 0, failed = 0, requests = 0;
const end = Date.now() + Number(duration) * 1000;

async function one(id) {
  const messages = [];
  if (system) messages.push({ role: 'system', content: system });
  messages.push({ role: 'user', content: words(Number(promptWords), `Request${id}-${requests}`) });
  requests++;
  const t0 = performance.now();
  let first = 0, last = 0, usage = null;
  try {
    const stream = await client.chat.completions.create({
      model, messages, max_tokens: Number(maxTokens), temperature: 0.7, stream: true,
      stream_options: { include_usage: true }, ignore_eos: true,
    });
    for await (const chunk of stream) {
      const text = chunk.choices?.[0]?.delta?.content;
      if (text) {
        last = performance.now();
        if (!first) first = last;
      }
      if (chunk.usage) usage = chunk.usage;
    }
  } catch (e) {
    if (e.status === 429 || e.status === 503) {
      refused++;
      const wait = Number(e.headers?.get?.('retry-after') ?? 1);
      await new Promise((r) => setTimeout(r, Math.min(wait, 5) * 1000));
      return;
    }
    failed++;
    console.error(`request failed: ${e.message}`);
    return;
  }
  if (!first || !usage) { failed++; return; }
  completed++;
  ttft.push((first - t0) / 1000);
  if (usage.completion_tokens > 1 && last > first) speed.push((usage.completion_tokens - 1) / ((last - first) / 1000));
  cached.push(usage.prompt_tokens_details?.cached_tokens ?? 0);
  prompt.push(usage.prompt_tokens);
}

async function worker(id) {
  while (Date.now() < end) await one(id);
}
await Promise.all(Array.from({ length: Number(sessions) }, (_, i) => worker(i)));

function q(a, p) {
  if (!a.length) return null;
  const s = [...a].sort((x, y) => x - y);
  return Number(s[Math.min(s.length - 1, Math.floor(p * s.length))].toFixed(3));
}
console.log(JSON.stringify({
  sessions: Number(sessions), duration_s: Number(duration), max_tokens: Number(maxTokens),
  prompt_words: Number(promptWords), system_words: Number(systemWords), requests, completed, refused, failed,
  ttft_s: { p50: q(ttft, 0.5), p90: q(ttft, 0.9), p99: q(ttft, 0.99), max: q(ttft, 1) },
  tok_s: { min: q(speed, 0), p10: q(speed, 0.1), p50: q(speed, 0.5) },
  below_floor: speed.filter((v) => v < Number(process.env.FLOOR ?? 10)).length,
  prompt_tokens_mean: prompt.length ? Number((prompt.reduce((a, b) => a + b, 0) / prompt.length).toFixed(1)) : 0,
  cached_tokens_mean: cached.length ? Number((cached.reduce((a, b) => a + b, 0) / cached.length).toFixed(1)) : 0,
}));

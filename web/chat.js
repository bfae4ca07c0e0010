// chat.js — the chat page: a conversation with the served model through the
// server's own OpenAI endpoint (POST /v1/chat/completions, streamed as
// Server-Sent Events). Each answer appears as it is generated, rendered as
// markdown (markdown.js: text nodes only), with its tokens/s and time to
// first token under it. A 429 reads "the server is full, retry in N s"
// (the Retry-After header), counting down; other errors show the server's
// message. The history (system prompt first) goes with every request.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const history = []; // {role, content} of finished turns
  let model = '';
  let busy = null; // the AbortController of the answer being streamed

  async function loadModel() {
    try {
      const r = await fetch('/v1/models', {headers: rl.headers()});
      if (!r.ok) {
        $('model').textContent = (await rl.apiError(r)).message;
        return;
      }
      const j = await r.json();
      model = j.data && j.data[0] ? j.data[0].id : '';
      $('model').textContent = model ? 'model ' + model : 'no model';
    } catch (e) {
      $('model').textContent = 'the server does not answer';
    }
  }

  function stops() {
    return $('stop').value.split('\n').filter((s) => s !== '').slice(0, 16).map((s) => s.replace(/\\n/g, '\n'));
  }

  function request(messages) {
    const body = {model, messages, stream: true, stream_options: {include_usage: true}};
    const t = parseFloat($('temperature').value);
    const n = parseInt($('max-tokens').value, 10);
    if (Number.isFinite(t)) body.temperature = t;
    if (Number.isFinite(n) && n > 0) body.max_tokens = n;
    const s = stops();
    if (s.length) body.stop = s;
    return body;
  }

  function bubble(role, text) {
    const b = rl.el('div', {class: 'msg ' + role});
    b.append(rl.el('div', {class: 'who', text: role === 'user' ? 'you' : model || 'assistant'}));
    const body = rl.el('div', {class: 'body'});
    if (role === 'user') body.textContent = text;
    b.append(body);
    $('log').append(b);
    b.scrollIntoView({block: 'end'});
    return b;
  }

  // The answer's figures: tokens, tok/s between its first and last token, TTFT.
  function showStats(b, a) {
    const tps = a.tokens > 1 && a.tLast > a.tFirst ? (a.tokens - 1) / ((a.tLast - a.tFirst) / 1000) : NaN;
    const ttft = a.tFirst ? (a.tFirst - a.t0) / 1000 : NaN;
    const line = a.tokens + ' tokens · ' + rl.fmt(tps) + ' tok/s · first token after ' + rl.fmt(ttft, 2) + ' s' +
                 (a.finish ? ' · ' + a.finish : '');
    b.append(rl.el('div', {class: 'stats', text: line, 'data-tps': rl.fmt(tps, 3), 'data-ttft': rl.fmt(ttft, 3),
                           'data-tokens': a.tokens}));
  }

  function notice(b, text, kind) {
    b.dataset.state = 'error';
    b.querySelector('.body').replaceChildren(rl.el('p', {class: 'notice ' + (kind || ''), text}));
  }

  // "the server is full, retry in N s", counting down to "retry now".
  function full(b, seconds, message) {
    notice(b, '', 'full');
    const p = b.querySelector('.notice');
    let left = Math.max(1, seconds || 1);
    const tick = () => {
      p.textContent = left > 0 ? 'The server is full, retry in ' + left + ' s.' : 'The server is full: retry now.';
      left--;
      if (left >= 0) setTimeout(tick, 1000);
    };
    tick();
    b.append(rl.el('div', {class: 'detail muted', text: message}));
  }

  // One SSE event's JSON into the answer's state; true at the end.
  function onEvent(a, data) {
    if (data === '[DONE]') return true;
    const j = JSON.parse(data);
    if (j.error) throw new Error(j.error.message || 'generation failed');
    const c = j.choices && j.choices[0];
    if (c && c.delta && typeof c.delta.content === 'string' && c.delta.content !== '') {
      const now = performance.now();
      if (!a.tFirst) a.tFirst = now;
      a.tLast = now;
      a.text += c.delta.content;
      a.chunks++;
    }
    if (c && c.finish_reason) a.finish = c.finish_reason;
    if (j.usage) a.tokens = j.usage.completion_tokens;
    return false;
  }

  async function stream(resp, b, a) {
    const reader = resp.body.getReader();
    const dec = new TextDecoder();
    const body = b.querySelector('.body');
    let buf = '';
    for (;;) {
      const {value, done} = await reader.read();
      if (done) return;
      buf += dec.decode(value, {stream: true});
      let i;
      let changed = false;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const ev = buf.slice(0, i);
        buf = buf.slice(i + 2);
        for (const line of ev.split('\n')) {
          if (!line.startsWith('data: ')) continue; // ": keep-alive" comments
          if (onEvent(a, line.slice(6))) return;
          changed = true;
        }
      }
      if (changed && a.text) {
        b.dataset.state = 'streaming';
        body.replaceChildren(rl.markdown(a.text));
        b.scrollIntoView({block: 'end'});
      }
    }
  }

  async function send(text) {
    const messages = [];
    const sys = $('system').value.trim();
    if (sys) messages.push({role: 'system', content: sys});
    messages.push(...history, {role: 'user', content: text});
    const u = bubble('user', text);
    const b = bubble('assistant', '');
    b.dataset.state = 'waiting';
    b.querySelector('.body').append(rl.el('span', {class: 'muted', text: 'waiting for the first token…'}));
    const a = {t0: performance.now(), tFirst: 0, tLast: 0, text: '', tokens: 0, chunks: 0, finish: ''};
    busy = new AbortController();
    $('send').disabled = true;
    $('stop-gen').disabled = false;
    try {
      const resp = await fetch('/v1/chat/completions', {method: 'POST', signal: busy.signal,
        headers: rl.headers({'Content-Type': 'application/json'}), body: JSON.stringify(request(messages))});
      if (!resp.ok) {
        const e = await rl.apiError(resp);
        if (e.status === 429) full(b, e.retryAfter, e.message);
        else notice(b, e.message);
        u.classList.add('unsent');
        $('input').value = text; // to send again
        return;
      }
      await stream(resp, b, a);
      if (!a.tokens) a.tokens = a.chunks;
      b.querySelector('.body').replaceChildren(rl.markdown(a.text));
      b.dataset.state = 'done';
      showStats(b, a);
      history.push({role: 'user', content: text}, {role: 'assistant', content: a.text});
    } catch (e) {
      if (e.name === 'AbortError') {
        b.dataset.state = 'done';
        b.append(rl.el('div', {class: 'stats', text: 'stopped'}));
        if (a.text) history.push({role: 'user', content: text}, {role: 'assistant', content: a.text});
      } else {
        notice(b, String(e.message || e));
      }
    } finally {
      busy = null;
      $('send').disabled = false;
      $('stop-gen').disabled = true;
    }
  }

  $('ask').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = $('input').value;
    if (!text.trim() || busy) return;
    $('input').value = '';
    send(text);
  });
  $('input').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey) {
      ev.preventDefault();
      $('ask').requestSubmit();
    }
  });
  $('stop-gen').addEventListener('click', () => busy && busy.abort());
  $('new-chat').addEventListener('click', () => {
    history.length = 0;
    $('log').replaceChildren();
  });
  rl.keyField(loadModel);
  loadModel();
})();

// common.js — what the pages of `rackllm serve` share: the API key (kept in
// sessionStorage for this tab, sent as "Authorization: Bearer"), the API's
// error answers turned into one line, and `el`, the one way the pages make
// DOM: it only ever sets text and attributes, never HTML, so nothing the
// model or a user writes can become markup.
'use strict';

const rl = (() => {
  const KEY = 'rackllm-api-key';

  function key() {
    return sessionStorage.getItem(KEY) || '';
  }

  function headers(extra) {
    const h = Object.assign({}, extra || {});
    if (key()) h.Authorization = 'Bearer ' + key();
    return h;
  }

  // el('div', {class: 'x', text: 'hello', 'data-n': 3}, child, 'text', ...)
  function el(tag, props, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, String(v));
    }
    for (const c of kids) if (c !== null && c !== undefined) e.append(c);
    return e;
  }

  // The key field in the header: typed once per tab, used by every request.
  function keyField(onChange) {
    const input = document.getElementById('api-key');
    if (!input) return;
    input.value = key();
    input.addEventListener('change', () => {
      sessionStorage.setItem(KEY, input.value.trim());
      if (onChange) onChange();
    });
  }

  // An answer that is not 2xx as {status, message, retryAfter}.
  async function apiError(resp) {
    let message = resp.status + ' ' + resp.statusText;
    try {
      const j = await resp.json();
      if (j && j.error && typeof j.error.message === 'string') message = j.error.message;
    } catch (e) {
      /* not JSON: the status line says it */
    }
    if (resp.status === 401) message = 'this server needs an API key: enter it at the top right (' + message + ')';
    const ra = parseInt(resp.headers.get('Retry-After') || '', 10);
    return {status: resp.status, message, retryAfter: Number.isFinite(ra) ? ra : 0};
  }

  function fmt(x, digits) {
    if (!Number.isFinite(x)) return '—';
    return x.toFixed(digits === undefined ? 1 : digits);
  }

  return {key, headers, el, keyField, apiError, fmt};
})();

// plan.js — the plan page: fetches the two SVG charts the server draws with
// `rackllm plan` (sending the API key; a 503 means "being drawn": asked
// again after its Retry-After) and shows each as an image from a blob:
// URL, so an SVG is only ever a picture here, never a document.
'use strict';

(() => {
  async function load(fig) {
    const cap = fig.querySelector('figcaption');
    try {
      const resp = await fetch(fig.dataset.src, {headers: rl.headers()});
      if (resp.status === 503) { // being drawn: ask again when it says
        const e = await rl.apiError(resp);
        setTimeout(() => load(fig), 1000 * Math.max(1, e.retryAfter));
        return;
      }
      if (!resp.ok) {
        cap.textContent = (await rl.apiError(resp)).message;
        fig.dataset.state = 'error';
        return;
      }
      const blob = await resp.blob();
      const img = rl.el('img', {alt: fig.id === 'this' ? 'sessions per server on this machine' : 'sessions per rack'});
      img.addEventListener('load', () => { fig.dataset.state = 'shown'; });
      img.src = URL.createObjectURL(new Blob([blob], {type: 'image/svg+xml'}));
      cap.textContent = '';
      fig.prepend(img);
    } catch (e) {
      cap.textContent = 'the server does not answer';
      fig.dataset.state = 'error';
    }
  }

  function loadAll() {
    for (const fig of document.querySelectorAll('figure.chart')) {
      fig.querySelector('img')?.remove();
      fig.querySelector('figcaption').textContent = 'drawing…';
      load(fig);
    }
  }

  rl.keyField(loadAll);
  loadAll();
})();

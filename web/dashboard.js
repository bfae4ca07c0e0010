// dashboard.js — the live dashboard: polls GET /v1/stats twice a second and
// redraws capacity (now, at start, and how it was set), sessions running
// and queued, each session's tok/s as a bar against the floor line, the
// TTFT and inter-token histograms, 429s in the last minute (from the
// cumulative counters, over the samples of the last 60 s), context
// reserved, the partitions' cores, and a timeline of the last two minutes
// (running, capacity, queued, refusals). Plain DOM and SVG, no chart
// library.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const POLL_MS = 500;
  const samples = []; // {t, rejected, tokens} for rates over the last minute
  const timeline = []; // {t, active, capacity, queued, rejected} over the last two minutes
  const SPAN = 120;
  const NS = 'http://www.w3.org/2000/svg';

  function set(id, text, value) {
    const e = $(id);
    e.textContent = text;
    if (value !== undefined) e.dataset.value = value;
  }

  function rejected(j) {
    return j.counters.rejected_full + j.counters.rejected_timeout;
  }

  // Rates from the first sample of the last 60 s to this one.
  function rates(j) {
    samples.push({t: j.time, rejected: rejected(j), tokens: j.counters.completion_tokens});
    while (samples.length > 2 && j.time - samples[0].t > 60) samples.shift();
    const a = samples[0];
    const span = j.time - a.t;
    const recent = samples.length > 4 ? samples[samples.length - 5] : a; // ~2 s for throughput
    const dt = j.time - recent.t;
    return {rejectsPerMinute: span > 0 ? (rejected(j) - a.rejected) * Math.min(1, 60 / span) : 0,
            span, tps: dt > 0 ? (j.counters.completion_tokens - recent.tokens) / dt : 0};
  }

  function cards(j, r) {
    const c = j.capacity;
    set('active', String(j.active_sessions), j.active_sessions);
    set('capacity', String(c.now), c.now);
    $('capacity-note').textContent = 'at start ' + c.at_start + ' (' + c.how + ')' +
      (c.now < c.at_start ? ' · lowered now: sessions fell below the floor' : '') + ' · peak ' + j.active_sessions_peak;
    set('floor', rl.fmt(j.floor_tokens_per_second, 1));
    const t = j.tokens_per_second;
    $('slowest').dataset.value = t.sessions;
    $('slowest').textContent = t.sessions > 0 ? 'slowest ' + rl.fmt(t.min) + ', mean ' + rl.fmt(t.mean) + ' tok/s over ' +
      t.sessions + ' measured' : 'no session measured yet';
    set('queued', String(j.queue_length), j.queue_length);
    set('queue-limit', String(j.queue_limit));
    $('admitted').textContent = j.counters.admitted + ' admitted since start';
    set('rejects-minute', String(Math.round(r.rejectsPerMinute)), r.rejectsPerMinute);
    $('rejects-total').dataset.value = rejected(j);
    $('rejects-total').textContent = rejected(j) + ' since start' + (r.span < 59 ? ' · counted over the ' + Math.round(r.span) + ' s this page has been open' : '');
    set('throughput', rl.fmt(r.tps, 1));
    $('tokens-total').textContent = j.counters.completion_tokens + ' tokens generated since start';
    set('ctx-reserved', String(Math.round(j.context.reserved_tokens)), j.context.reserved_tokens);
    $('ctx-note').textContent = j.context.per_session + ' per session at most; each step costs ' +
      rl.fmt(j.context.cost_seconds_per_token * 1e6, 3) + ' µs per token of context held';
  }

  // One bar per running session, scaled to twice the floor (or the fastest).
  function sessions(j) {
    const floor = j.floor_tokens_per_second;
    const top = Math.max(2 * floor, ...j.sessions.map((s) => s.tokens_per_second * 1.1));
    const rows = j.sessions.map((s, i) => {
      const tps = s.tokens_per_second;
      const state = s.prefilling ? 'prefill' : tps <= 0 ? 'starting' : tps >= floor ? 'ok' : 'slow';
      const bar = rl.el('div', {class: 'bar ' + state});
      bar.style.width = Math.min(100, (100 * tps) / top) + '%';
      const track = rl.el('div', {class: 'track'}, bar, rl.el('div', {class: 'floor-line', title: 'floor'}));
      track.lastChild.style.left = (100 * floor) / top + '%';
      const label = state === 'prefill' ? 'reading its prompt' : tps > 0 ? rl.fmt(tps) + ' tok/s' : 'first tokens';
      return rl.el('div', {class: 'session', 'data-tps': tps, 'data-partition': s.partition},
        rl.el('span', {class: 'name', text: '#' + (i + 1) + ' · p' + s.partition}), track,
        rl.el('span', {class: 'value', text: label}),
        rl.el('span', {class: 'muted', text: s.generated_tokens + ' tok · TTFT ' + rl.fmt(s.ttft_seconds, 2) + ' s · ' +
          rl.fmt(s.age_seconds, 0) + ' s old'}));
    });
    if (!rows.length) rows.push(rl.el('p', {class: 'muted', text: 'no session is running'}));
    const scale = rl.el('div', {class: 'scale muted', text: 'bar: tok/s over the last 16 tokens, scale 0 – ' + rl.fmt(top, 0) +
      ' tok/s; the line is the floor (' + rl.fmt(floor) + ')'});
    $('sessions').replaceChildren(...rows, scale);
  }

  // A histogram's buckets as bars, and its quantiles as "≤ bound".
  function histogram(id, h) {
    const max = Math.max(1, ...h.counts);
    const cols = h.counts.map((n, i) => {
      const label = i < h.bounds_seconds.length ? shortSeconds(h.bounds_seconds[i]) : '>' + shortSeconds(h.bounds_seconds[i - 1]);
      const bar = rl.el('div', {class: 'hbar'});
      bar.style.height = (100 * n) / max + '%';
      return rl.el('div', {class: 'hcol', title: n + (i < h.bounds_seconds.length ? ' at most ' : ' over ') + label}, rl.el('div', {class: 'hbox'}, bar),
                   rl.el('div', {class: 'hn', text: String(n)}), rl.el('div', {class: 'hl', text: label}));
    });
    $(id).replaceChildren(...cols);
    const q = (p) => {
      let acc = 0;
      for (let i = 0; i < h.counts.length; i++) {
        acc += h.counts[i];
        if (acc >= p * h.count) return i < h.bounds_seconds.length ? '≤ ' + fmtSeconds(h.bounds_seconds[i]) : 'more';
      }
      return '—';
    };
    $(id + '-note').textContent = h.count ? h.count + ' since start · mean ' + fmtSeconds(h.sum_seconds / h.count) +
      ' · median ' + q(0.5) + ' · p95 ' + q(0.95) : 'none yet';
  }

  // A bucket's bound in few characters: "250ms", "2.5s".
  function shortSeconds(s) {
    return s < 1 ? Math.round(s * 1000) + 'ms' : s + 's';
  }

  function fmtSeconds(s) {
    return s < 1 ? Math.round(s * 1000) + ' ms' : rl.fmt(s, s < 10 ? 1 : 0) + ' s';
  }

  function table(head, rows) {
    return rl.el('table', {}, rl.el('thead', {}, rl.el('tr', {}, ...head.map((h) => rl.el('th', {text: h})))),
      rl.el('tbody', {}, ...rows.map((r) => rl.el('tr', {}, ...r.map((c) => rl.el('td', {text: String(c)}))))));
  }

  function calibration(j) {
    const c = j.capacity;
    const floor = j.floor_tokens_per_second;
    const what = c.how === 'measured'
      ? 'Measured at start-up: sessions decoding together, doubled then bisected, until each kept the floor with headroom.'
      : 'Given (--capacity); admission checks the step times below.';
    const rows = c.step_seconds_by_sessions.map((p) => [p.sessions, fmtSeconds(p.step_seconds), rl.fmt(1 / p.step_seconds),
      1 / p.step_seconds >= floor ? 'yes' : 'no']);
    $('calibration').replaceChildren(rl.el('p', {text: what + ' Capacity ' + c.at_start + ' at ≥ ' + rl.fmt(floor) +
      ' tok/s; lowered ' + c.times_lowered + ' times since.'}),
      rows.length ? table(['sessions', 'step', 'tok/s each', 'keeps the floor'], rows) : rl.el('p', {class: 'muted', text: 'no step times'}));
  }

  function partitions(j) {
    const rows = j.partitions.map((p, i) => [i, p.threads, p.cpus.length ? p.cpus.join(', ') : 'not pinned',
      j.sessions.filter((s) => s.partition === i).length]);
    $('partitions').replaceChildren(table(['partition', 'threads', 'cores', 'sessions'], rows),
      rl.el('p', {class: 'muted', text: 'prefill chunk ' + j.prefill_chunk + ' tokens per step'}));
  }

  function svg(tag, attrs) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    return e;
  }

  // Lines for running, capacity and queued; a red bar where refusals grew.
  function drawTimeline(j) {
    timeline.push({t: j.time, active: j.active_sessions, capacity: j.capacity.now, queued: j.queue_length, rejected: rejected(j)});
    while (timeline.length > 2 && j.time - timeline[0].t > SPAN) timeline.shift();
    const span = Math.min(SPAN, Math.max(30, j.time - timeline[0].t)); // grows to two minutes
    const W = 1000, H = 150, top = 10;
    const ymax = Math.max(1, ...timeline.map((p) => Math.max(p.capacity, p.active + p.queued))) * 1.15;
    const x = (t) => W - ((j.time - t) / span) * W;
    const y = (v) => H - 2 - (v / ymax) * (H - top - 2);
    const line = (key, cls) => svg('polyline', {class: cls, fill: 'none',
      points: timeline.map((p) => x(p.t).toFixed(1) + ',' + y(p[key]).toFixed(1)).join(' ')});
    const kids = [];
    for (let v = 0; v <= ymax; v += Math.max(1, Math.ceil(ymax / 4))) {
      kids.push(svg('line', {class: 'grid', x1: 0, x2: W, y1: y(v), y2: y(v)}));
      const label = svg('text', {class: 'axis', x: 4, y: y(v) - 3});
      label.textContent = String(v);
      kids.push(label);
    }
    for (let i = 1; i < timeline.length; i++) {
      const d = timeline[i].rejected - timeline[i - 1].rejected;
      if (d > 0) kids.push(svg('rect', {class: 'rejected', x: x(timeline[i].t) - 3, width: 6, y: y(Math.min(d, ymax)), height: H - 2 - y(Math.min(d, ymax))}));
    }
    kids.push(line('capacity', 'cap'), line('queued', 'queued'), line('active', 'active'));
    $('timeline').replaceChildren(...kids);
    $('timeline-span').textContent = Math.round(span) + ' s';
  }

  async function poll() {
    try {
      const resp = await fetch('/v1/stats', {headers: rl.headers(), cache: 'no-store'});
      if (!resp.ok) {
        set('status', (await rl.apiError(resp)).message);
      } else {
        const j = await resp.json();
        const r = rates(j);
        cards(j, r);
        drawTimeline(j);
        sessions(j);
        histogram('ttft', j.ttft);
        histogram('itl', j.inter_token);
        calibration(j);
        partitions(j);
        set('status', j.model + ' · ' + j.status + ' · ' + new Date(j.time * 1000).toLocaleTimeString(), j.time);
      }
    } catch (e) {
      set('status', 'the server does not answer');
    }
    setTimeout(poll, POLL_MS);
  }

  rl.keyField(() => { samples.length = 0; timeline.length = 0; });
  poll();
})();

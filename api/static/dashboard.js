/* leadrouter dashboard: reads /api/v1/dashboard (stream, or snapshots when the stream fails).
 *
 * Plain JavaScript, no build step. Read-only: it sends GET requests and nothing else.
 * EventSource cannot send an Authorization header, so the stream is read with fetch() and a
 * stream reader, parsed as Server-Sent Events here. The API token (when the API has one) is
 * asked once and kept in sessionStorage: for this tab, until it is closed.
 */
(() => {
  'use strict';

  const TOKEN_KEY = 'leadrouter.apiToken';
  const API = 'api/v1/dashboard';
  const WINDOWS = [300, 900, 3600, 86400];
  const STALL_MS = 15000; // no byte for this long (heartbeats come every 5 s): reconnect
  const POLL_AFTER_FAILURES = 3; // then poll snapshots until the stream works again
  const POLL_MS = 5000;
  const MAX_BACKOFF_MS = 15000;
  const RATE_SECONDS = 10; // the "routed / s" tile's window
  const CARD_REM = 13; // an operator card's narrowest width
  const MANY_OPERATORS = 24; // beyond: the operators' panel spans the page under the charts
  const LABEL_EM = 5; // a bar label's narrowest room; closer bars name every n-th operator

  const $ = (id) => document.getElementById(id);
  const state = {
    window: 3600,
    snapshot: null,
    clockOffsetMs: 0, // server time - local time, from the last message
    failures: 0,
    controller: null,
    pollTimer: null,
    flowChart: null,
    flowDate: null, // the date above the flow chart (its axis shows times only)
    shareCharts: new Map(), // source id -> {chart, key}
    operatorRows: new Map(), // operator id -> {el, parts, last}
    operatorNames: '', // the names the cards were last sized for
    queueRows: new Map(), // source id -> {el, cells}
    generation: 0, // bumped to restart the stream (window changed, token entered)
  };

  class Unauthorized extends Error {}

  // ---- token and requests ------------------------------------------------------------------
  const token = () => sessionStorage.getItem(TOKEN_KEY) || '';
  const authHeaders = () => (token() ? { Authorization: `Bearer ${token()}` } : {});

  async function getJson(path, signal) {
    const response = await fetch(path, { headers: authHeaders(), cache: 'no-store', signal });
    if (response.status === 401) throw new Unauthorized('token refused');
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.json();
  }

  const snapshotUrl = () => `${API}/snapshot?window=${state.window}`;
  const streamUrl = () => `${API}/stream?window=${state.window}`;

  // ---- status line -------------------------------------------------------------------------
  function setStatus(kind, text) {
    const el = $('status');
    el.dataset.state = kind;
    el.textContent = text;
  }

  function showProblem(text) {
    const el = $('problem');
    el.textContent = text || '';
    el.hidden = !text;
  }

  // ---- login -------------------------------------------------------------------------------
  function showLogin(message) {
    state.generation += 1;
    stopPolling();
    if (state.controller) state.controller.abort();
    state.snapshot = null;
    $('board').hidden = true;
    $('login').hidden = false;
    $('forget').hidden = true;
    $('window-choice').hidden = true;
    $('login-error').textContent = message || '';
    setStatus('login', 'token needed');
    clearBoard();
    $('token').focus();
  }

  function clearBoard() {
    $('operators').replaceChildren();
    $('queue').replaceChildren();
    state.operatorRows.clear();
    state.queueRows.clear();
    for (const { chart } of state.shareCharts.values()) chart.destroy();
    state.shareCharts.clear();
    $('shares').replaceChildren();
  }

  function showBoard() {
    $('login').hidden = true;
    $('board').hidden = false;
    $('forget').hidden = !token();
    $('window-choice').hidden = false;
  }

  // ---- the stream --------------------------------------------------------------------------
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const backoff = (failures) => Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(failures, 5));

  async function run() {
    const generation = ++state.generation;
    while (generation === state.generation) {
      try {
        await readStream(generation);
        // The server ended the stream (a restart, a shutdown): reconnect after a short pause.
      } catch (error) {
        if (error instanceof Unauthorized) {
          showLogin(token() ? 'That token was refused.' : '');
          return;
        }
        if (generation !== state.generation) return;
        state.failures += 1;
      }
      if (generation !== state.generation) return;
      if (state.failures >= POLL_AFTER_FAILURES) startPolling();
      if (state.pollTimer === null) setStatus('reconnecting', 'reconnecting…');
      await sleep(backoff(state.failures));
    }
  }

  async function readStream(generation) {
    const controller = new AbortController();
    state.controller = controller;
    let stall = setTimeout(() => controller.abort(), STALL_MS);
    try {
      const response = await fetch(streamUrl(), {
        headers: { ...authHeaders(), Accept: 'text/event-stream' },
        cache: 'no-store',
        signal: controller.signal,
      });
      if (response.status === 401) throw new Unauthorized('token refused');
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done || generation !== state.generation) return;
        clearTimeout(stall);
        stall = setTimeout(() => controller.abort(), STALL_MS);
        buffer += value.replace(/\r\n?/g, '\n');
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          dispatch(parseEvent(block));
        }
      }
    } finally {
      clearTimeout(stall);
      if (state.controller === controller) state.controller = null;
      controller.abort();
    }
  }

  function parseEvent(block) {
    const event = { type: 'message', data: [] };
    for (const line of block.split('\n')) {
      if (!line || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event.type = value;
      else if (field === 'data') event.data.push(value);
    }
    return { type: event.type, data: event.data.join('\n') };
  }

  function dispatch(event) {
    if (event.type === 'snapshot') {
      connected();
      render(JSON.parse(event.data));
    } else if (event.type === 'heartbeat') {
      connected();
      syncClock(JSON.parse(event.data).at);
    } else if (event.type === 'problem') {
      connected();
      showProblem(`The API says: ${JSON.parse(event.data).detail}. Showing the last data.`);
    }
  }

  function connected() {
    state.failures = 0;
    stopPolling();
    setStatus('live', 'live');
  }

  // ---- the fallback: polling ---------------------------------------------------------------
  function startPolling() {
    if (state.pollTimer !== null) return;
    const poll = async () => {
      try {
        render(await getJson(snapshotUrl()));
        if (state.pollTimer !== null) setStatus('polling', 'polling (stream unavailable)');
      } catch (error) {
        if (error instanceof Unauthorized) return showLogin('That token was refused.');
        if (state.pollTimer !== null) setStatus('offline', 'offline, retrying…');
      }
    };
    state.pollTimer = setInterval(poll, POLL_MS);
    poll();
  }

  function stopPolling() {
    if (state.pollTimer === null) return;
    clearInterval(state.pollTimer);
    state.pollTimer = null;
  }

  // ---- rendering ---------------------------------------------------------------------------
  const now = () => Date.now() + state.clockOffsetMs;

  function syncClock(serverIso) {
    const server = Date.parse(serverIso);
    if (!Number.isNaN(server)) state.clockOffsetMs = server - Date.now();
    $('updated').textContent = `checked ${new Date(now()).toLocaleTimeString()}`;
  }

  function render(snapshot) {
    if ($('board').hidden) showBoard();
    showProblem(snapshot.broker === 'down' ? 'The message broker is unreachable from the API.' : '');
    state.snapshot = snapshot;
    syncClock(snapshot.generated_at);
    renderTiles(snapshot);
    renderOperators(snapshot.operators);
    renderQueue(snapshot.sources);
    renderFlow();
    renderShares(snapshot);
  }

  function text(id, value) {
    const el = $(id);
    if (el.textContent !== String(value)) el.textContent = value;
  }

  function renderTiles(s) {
    text('waiting-count', s.waiting_count);
    const active = s.operators.filter((o) => o.active);
    const busy = active.filter((o) => o.current_load > 0).length;
    text('busy', `${busy} / ${active.length}`);
    text('operators-count', `${s.operators.length}`);
    text('dead-letters', s.dead_letters === null ? '?' : s.dead_letters);
    $('dead-letters').parentElement.classList.toggle('alert', s.dead_letters > 0);
    text('broker', s.broker);
    $('broker').parentElement.classList.toggle('alert', s.broker !== 'ok');
    renderRate();
    tickWaits();
  }

  /* Routed in the last 10 whole seconds of the server's clock, redrawn every second: an
     unchanged snapshot is not sent again, so the rate must fall by itself when nothing happens. */
  function renderRate() {
    const snapshot = state.snapshot;
    if (!snapshot) return;
    const end = Math.floor(now() / 1000);
    const total = snapshot.flow.points
      .filter(([second]) => second > end - RATE_SECONDS && second <= end)
      .reduce((sum, [, count]) => sum + count, 0);
    text('rate', (total / RATE_SECONDS).toFixed(1));
  }

  function el(tag, className, content) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (content !== undefined) node.textContent = content;
    return node;
  }

  function renderOperators(operators) {
    const container = $('operators');
    const seen = new Set();
    let previous = null;
    for (const op of operators) {
      seen.add(op.id);
      let row = state.operatorRows.get(op.id);
      if (!row) {
        row = makeOperatorRow(op.id);
        state.operatorRows.set(op.id, row);
      }
      // Keep the order of the snapshot (by id) with as few DOM moves as possible.
      const expected = previous ? previous.nextSibling : container.firstChild;
      if (expected !== row.el) container.insertBefore(row.el, expected);
      previous = row.el;
      updateOperatorRow(row, op);
    }
    for (const [id, row] of state.operatorRows) {
      if (!seen.has(id)) {
        row.el.remove();
        state.operatorRows.delete(id);
      }
    }
    const names = operators.map((o) => o.name).join('\u0000');
    if (names !== state.operatorNames) {
      state.operatorNames = names;
      // Many operators: their panel goes under the charts, across the whole width.
      const many = operators.length > MANY_OPERATORS;
      if ($('board').classList.contains('many') !== many) {
        $('board').classList.toggle('many', many);
        resizeCharts();
      }
      fitOperatorCards();
    }
  }

  /* Cards as wide as the longest name needs while the operators still fit on the screen;
     beyond that (200 operators), the base width, names cut with the whole one on hover. */
  function fitOperatorCards() {
    const grid = $('operators');
    const cards = [...grid.children];
    if (!cards.length || !grid.clientWidth) return;
    const rem = parseFloat(getComputedStyle(document.documentElement).fontSize);
    const style = getComputedStyle(grid);
    const gap = parseFloat(style.columnGap) || 0;
    const rowGap = parseFloat(style.rowGap) || 0;
    let need = 0;
    let rowHeight = 0;
    for (const card of cards) {
      const name = card.querySelector('.name');
      const text = document.createRange();
      text.selectNodeContents(name); // the whole name's width, whatever its box's
      const whole = Math.ceil(text.getBoundingClientRect().width);
      need = Math.max(need, card.offsetWidth - name.clientWidth + whole + 1);
      rowHeight = Math.max(rowHeight, card.offsetHeight);
    }
    const width = grid.clientWidth;
    const top = grid.getBoundingClientRect().top + window.scrollY;
    const room = Math.max(window.innerHeight - top, 6 * (rowHeight + rowGap));
    const rows = Math.max(1, Math.floor((room + rowGap) / (rowHeight + rowGap)));
    // As many columns as the screen's height asks for, each as wide as the names need: a
    // few operators make a list across the panel, 200 a grid of cards.
    const columns = Math.ceil(cards.length / rows);
    const fitsHeight = (width - (columns - 1) * gap) / columns;
    const base = CARD_REM * rem;
    const chosen = columns === 1 ? width : Math.max(base, Math.min(need, fitsHeight, width));
    grid.style.setProperty('--card-min', `${Math.floor(chosen)}px`);
  }

  function makeOperatorRow(id) {
    const root = el('div', 'op');
    root.dataset.operatorId = id;
    const parts = {
      dot: el('span', 'dot'),
      name: el('span', 'name'),
      load: el('span', 'load'),
      bar: el('div', 'bar'),
      assigned: el('span', 'assigned'),
      offered: el('span', 'offered'),
      hour: el('span', 'hour'),
    };
    parts.bar.append(parts.assigned, parts.offered);
    parts.bar.setAttribute('role', 'meter');
    parts.bar.setAttribute('aria-valuemin', '0');
    root.append(parts.dot, parts.name, parts.load, parts.bar, parts.hour);
    return { el: root, parts, last: '' };
  }

  function updateOperatorRow(row, op) {
    const key = JSON.stringify(op);
    if (row.last === key) return;
    row.last = key;
    const { parts } = row;
    const limit = Math.max(op.load_limit, 0);
    const assigned = Math.max(op.current_load - op.offered, 0);
    const scale = Math.max(limit, op.current_load, 1);
    row.el.classList.toggle('inactive', !op.active);
    row.el.classList.toggle('full', op.active && op.current_load >= limit);
    parts.name.textContent = op.name;
    row.el.title = `${op.name} (#${op.id})${op.active ? '' : ', inactive'}: ${op.current_load} of ${limit}` +
      (op.offered ? `, ${op.offered} offered` : '') + `; ${op.assigned_last_hour} assigned in the last hour`;
    parts.load.textContent = `${op.current_load} / ${limit}` + (op.offered ? ` (${op.offered} offered)` : '');
    parts.hour.textContent = `${op.assigned_last_hour} / h`;
    parts.assigned.style.width = `${(100 * assigned) / scale}%`;
    parts.offered.style.width = `${(100 * op.offered) / scale}%`;
    parts.bar.setAttribute('aria-valuemax', String(limit));
    parts.bar.setAttribute('aria-valuenow', String(op.current_load));
    parts.bar.setAttribute('aria-label', `load of ${op.name}`);
  }

  function formatWait(seconds) {
    if (seconds < 60) return `${Math.floor(seconds)} s`;
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return `${minutes} min ${String(Math.floor(seconds % 60)).padStart(2, '0')} s`;
    return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
  }

  function renderQueue(sources) {
    const body = $('queue');
    const seen = new Set();
    for (const source of sources) {
      seen.add(source.id);
      let row = state.queueRows.get(source.id);
      if (!row) {
        const tr = el('tr');
        tr.dataset.sourceId = source.id;
        const cells = { name: el('td', 'name'), count: el('td', 'count'), wait: el('td', 'wait'), limit: el('td', 'limit') };
        tr.append(cells.name, cells.count, cells.wait, cells.limit);
        body.append(tr);
        row = { el: tr, cells, source };
        state.queueRows.set(source.id, row);
      }
      row.source = source;
      row.cells.name.textContent = source.identifier;
      row.cells.count.textContent = source.waiting;
      row.cells.limit.textContent = source.max_wait_s === null ? '–' : formatWait(source.max_wait_s);
    }
    for (const [id, row] of state.queueRows) {
      if (!seen.has(id)) {
        row.el.remove();
        state.queueRows.delete(id);
      }
    }
    tickWaits();
  }

  /* Waits grow by themselves: redrawn every second from the oldest created_at. */
  function tickWaits() {
    let oldest = null;
    for (const { el: tr, cells, source } of state.queueRows.values()) {
      const since = source.oldest_waiting_at ? Date.parse(source.oldest_waiting_at) : null;
      const wait = since === null ? null : Math.max(0, (now() - since) / 1000);
      cells.wait.textContent = wait === null ? '–' : formatWait(wait);
      // The SLA hook: a source with max_wait_s whose oldest waiting one waited longer.
      const overdue = wait !== null && source.max_wait_s !== null && wait > source.max_wait_s;
      tr.classList.toggle('overdue', overdue);
      tr.classList.toggle('idle', source.waiting === 0);
      if (wait !== null && (oldest === null || wait > oldest)) oldest = wait;
    }
    text('oldest-wait', oldest === null ? '–' : formatWait(oldest));
  }

  function chartWidth(container) {
    return Math.max(200, container.clientWidth - 4);
  }

  function renderFlow() {
    const snapshot = state.snapshot;
    if (!snapshot || typeof uPlot === 'undefined') return;
    const span = snapshot.flow.seconds;
    const end = Math.floor(now() / 1000);
    const counts = new Map(snapshot.flow.points);
    const xs = [];
    const ys = [];
    for (let second = end - span + 1; second <= end; second += 1) {
      xs.push(second);
      ys.push(counts.get(second) || 0);
    }
    const container = $('flow');
    const date = new Date(end * 1000).toLocaleDateString(undefined, { dateStyle: 'medium' });
    if (!state.flowDate) {
      state.flowDate = el('div', 'flow-date');
      container.prepend(state.flowDate);
    }
    if (state.flowDate.textContent !== date) state.flowDate.textContent = date;
    if (!state.flowChart) {
      state.flowChart = new uPlot(
        {
          width: chartWidth(container),
          height: 160,
          legend: { show: false },
          cursor: { show: true, drag: { x: false, y: false } },
          scales: { y: { range: (u, min, max) => [0, Math.max(5, max * 1.1)] } },
          axes: [
            {
              // One line, whole minutes: uPlot's default adds the date under a tick, where it
              // ran into the neighbouring times; the date is the line above the chart.
              stroke: '#8b98a5', grid: { stroke: '#2a3540' }, ticks: { stroke: '#2a3540' },
              space: 70, incrs: [60, 120, 300, 600],
              values: (u, splits) => splits.map((t) => new Date(t * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })),
            },
            { stroke: '#8b98a5', grid: { stroke: '#2a3540' }, ticks: { stroke: '#2a3540' }, size: 60 },
          ],
          series: [{}, { label: 'routed / s', stroke: '#58a6ff', fill: 'rgba(88,166,255,0.25)', width: 1.5, points: { show: false } }],
        },
        [xs, ys],
        container,
      );
    } else {
      state.flowChart.setData([xs, ys]);
    }
  }

  function renderShares(snapshot) {
    if (typeof uPlot === 'undefined') return;
    const container = $('shares');
    const names = new Map(snapshot.operators.map((o) => [o.id, o.name]));
    const seen = new Set();
    for (const source of snapshot.sources) {
      seen.add(source.id);
      const shares = source.shares;
      const total = shares.reduce((sum, s) => sum + s.observed, 0);
      const labels = shares.map((s) => names.get(s.operator_id) || `#${s.operator_id}`);
      const xs = shares.map((_, i) => i);
      const configured = shares.map((s) => Math.round(s.configured * 1000) / 10);
      const observed = shares.map((s) => (total ? Math.round((s.observed / total) * 1000) / 10 : 0));
      const key = labels.join('\u0000');
      let entry = state.shareCharts.get(source.id);
      if (entry && entry.key !== key) {
        entry.chart.destroy();
        entry.box.remove();
        entry = null;
      }
      if (!entry) {
        const box = el('div', 'share');
        box.dataset.sourceId = source.id;
        const title = el('h3');
        const plot = el('div', 'chart');
        const names = el('div', 'share-labels');
        box.append(title, plot, names);
        container.append(box);
        const chart = shareChart(plot, labels, [xs, configured, observed]);
        entry = { box, title, key, chart, names, labels, placed: '' };
        state.shareCharts.set(source.id, entry);
      } else {
        entry.chart.setData([xs, configured, observed]);
      }
      const waiting = source.waiting ? `, ${source.waiting} waiting now` : '';
      entry.title.textContent = `${source.identifier} · ${source.in_window} in the window${waiting}`;
      placeLabels(entry);
    }
    for (const [id, entry] of state.shareCharts) {
      if (!seen.has(id)) {
        entry.chart.destroy();
        entry.box.remove();
        state.shareCharts.delete(id);
      }
    }
  }

  /* Operator names under their bars as HTML, not on the canvas: the browser wraps and cuts
     them to the room each bar has (three lines at most, the whole name on hover), and a test can
     see their boxes. With many operators only every n-th is named. */
  function placeLabels(entry) {
    const { chart, names, labels } = entry;
    const left = chart.bbox.left / devicePixelRatio;
    const width = chart.bbox.width / devicePixelRatio;
    const slot = width / Math.max(labels.length, 1);
    const em = parseFloat(getComputedStyle(names).fontSize) || 12;
    const every = Math.max(1, Math.ceil((LABEL_EM * em) / slot));
    const key = `${left}:${width}:${every}`;
    if (entry.placed === key) return;
    entry.placed = key;
    names.style.marginLeft = `${left}px`;
    names.style.width = `${width}px`;
    names.style.setProperty('--slots', String(labels.length || 1));
    // Narrow room: one line cut with an ellipsis, rather than words broken over lines.
    names.classList.toggle('dense', slot * every < 2 * LABEL_EM * em);
    const spans = labels.map((label, i) => {
      if (i % every !== 0) return null;
      const span = el('span', 'share-label', label);
      span.title = label;
      span.style.gridColumn = `${i + 1} / span ${Math.min(every, labels.length - i)}`;
      return span;
    }).filter(Boolean);
    names.replaceChildren(...spans);
  }

  function shareChart(container, labels, data) {
    const bars = (align) => uPlot.paths.bars({ size: [0.4, 48], align });
    return new uPlot(
      {
        width: chartWidth(container.parentElement),
        height: 130,
        legend: { show: false },
        cursor: { show: false },
        scales: {
          x: { time: false, range: [-0.6, Math.max(labels.length - 0.4, 0.6)] },
          // Up to the largest share (and a little more): 50 operators at 2 % each stay visible.
          y: { range: (u, min, max) => [0, Math.min(100, Math.max(10, max * 1.15))] },
        },
        axes: [
          { show: false }, // the names are HTML under the chart (placeLabels)
          { stroke: '#8b98a5', grid: { stroke: '#2a3540' }, ticks: { show: false }, size: 40, values: (u, v) => v.map((x) => `${x}%`) },
        ],
        series: [
          { label: 'operator', value: (u, i) => labels[i] || '' },
          { label: 'configured %', fill: '#58a6ff', stroke: '#58a6ff', paths: bars(-1), points: { show: false } },
          { label: 'observed %', fill: '#3fb950', stroke: '#3fb950', paths: bars(1), points: { show: false } },
        ],
      },
      data,
      container,
    );
  }

  function resizeCharts() {
    if (state.flowChart) state.flowChart.setSize({ width: chartWidth($('flow')), height: 160 });
    for (const entry of state.shareCharts.values()) {
      entry.chart.setSize({ width: chartWidth(entry.box), height: 130 });
      placeLabels(entry);
    }
    fitOperatorCards();
  }

  // ---- start -------------------------------------------------------------------------------
  async function start() {
    showProblem('');
    setStatus('connecting', 'connecting…');
    try {
      render(await getJson(snapshotUrl()));
    } catch (error) {
      if (error instanceof Unauthorized) return showLogin(token() ? 'That token was refused.' : '');
      setStatus('offline', 'offline, retrying…'); // the stream loop keeps trying
    }
    run();
  }

  function init() {
    const requested = Number(new URLSearchParams(location.search).get('window'));
    if (WINDOWS.includes(requested)) state.window = requested;
    $('window').value = String(state.window);
    $('window').addEventListener('change', (event) => {
      state.window = Number(event.target.value);
      const url = new URL(location.href);
      url.searchParams.set('window', String(state.window));
      history.replaceState(null, '', url);
      if (state.controller) state.controller.abort();
      start();
    });
    $('login-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const value = $('token').value.trim();
      if (!value) return;
      sessionStorage.setItem(TOKEN_KEY, value);
      $('token').value = '';
      start();
    });
    $('forget').addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin('');
    });
    setInterval(() => {
      if (!state.snapshot) return;
      tickWaits();
      renderRate();
      renderFlow();
    }, 1000);
    window.addEventListener('resize', resizeCharts);
    start();
  }

  init();
})();

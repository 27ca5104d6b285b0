// The baton console page. Every value from the server is rendered with textContent (never as markup), and
// the Content-Security-Policy allows no inline script: a payload holding HTML or script stays text.

const STATUSES = ['pending', 'running', 'failed', 'done', 'dead'];
const $ = (id) => document.getElementById(id);
const state = {
  token: sessionStorage.getItem('baton-console-token') ?? '',
  readOnly: true,
  listQuery: null,
  problems: '',
  locks: '',
};
const charts = { throughput: null, latency: null };

/** An element with text children only: strings become text nodes. */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === 'className') node.className = value;
    else if (name === 'onclick') node.addEventListener('click', value);
    else if (name === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(
      typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child,
    );
  }
  return node;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function time(iso) {
  return iso ? new Date(iso).toLocaleString() : '–';
}

function duration(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

function say(message, ok = true) {
  const status = $('action-status');
  status.textContent = message;
  status.className = ok ? '' : 'note';
}

function headers() {
  return state.token ? { Authorization: `Bearer ${state.token}` } : {};
}

async function getJson(url) {
  const response = await fetch(url, { headers: { Accept: 'application/json' } });
  const body = await response.json();
  if (!response.ok) throw new Error(body.message ?? `${response.status}`);
  return body;
}

function renderCounts(snapshot) {
  const rows = [...snapshot.counts.open, ...snapshot.counts.finished];
  const kinds = [...new Set(rows.map((r) => r.kind))].sort();
  const cell = new Map(rows.map((r) => [`${r.kind}\u0000${r.status}`, r.n]));
  const totals = Object.fromEntries(STATUSES.map((s) => [s, 0]));
  for (const r of rows) totals[r.status] = (totals[r.status] ?? 0) + r.n;
  const table = $('counts');
  table.tHead.replaceChildren(
    el(
      'tr',
      {},
      el('th', {}, 'kind'),
      ...STATUSES.map((s) => el('th', { className: 'num' }, s)),
      el('th', { className: 'num' }, 'total'),
    ),
  );
  fill(
    table.tBodies[0],
    kinds.map((kind) => {
      const values = STATUSES.map((s) => cell.get(`${kind}\u0000${s}`) ?? 0);
      return el(
        'tr',
        { dataset: { kind } },
        el('td', {}, kind),
        ...values.map((n, i) => el('td', { className: 'num', dataset: { status: STATUSES[i] } }, n)),
        el(
          'td',
          { className: 'num', dataset: { status: 'total' } },
          values.reduce((a, b) => a + b, 0),
        ),
      );
    }),
  );
  const all = STATUSES.reduce((sum, s) => sum + totals[s], 0);
  table.tFoot.replaceChildren(
    el(
      'tr',
      { id: 'count-totals' },
      el('th', {}, 'all kinds'),
      ...STATUSES.map((s) => el('th', { className: 'num', id: `count-${s}` }, totals[s])),
      el('th', { className: 'num', id: 'count-total' }, all),
    ),
  );
  $('finished-note').textContent =
    `done and dead counted at ${new Date(snapshot.counts.finishedAt).toLocaleTimeString()} (a full count runs less often than the rest)`;
  $('backlog').textContent = String(snapshot.backlog.due);
  $('clock').textContent = new Date(snapshot.at).toLocaleTimeString();
}

function bytes(n) {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

function age(ms) {
  if (ms >= 86_400_000 && ms % 86_400_000 === 0) return `${ms / 86_400_000} d`;
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  return duration(ms);
}

function renderStorage(snapshot) {
  const view = snapshot.storage;
  $('table-size').textContent = bytes(view.bytes);
  $('table-rows').textContent =
    view.rowEstimate === null
      ? 'no row estimate yet (not analyzed)'
      : `about ${view.rowEstimate.toLocaleString('en')} rows (planner estimate)`;
  if (!view.retention) {
    fill($('retention'), [
      el(
        'li',
        { id: 'retention-off' },
        'No retention policy: done and dead tasks stay in the table (set --retain-done / --retain-dead, or BATON_RETAIN_DONE / BATON_RETAIN_DEAD).',
      ),
    ]);
    return;
  }
  fill(
    $('retention'),
    ['done', 'dead'].map((status) => {
      const due = view.retention[status];
      if (!due) return el('li', { dataset: { status } }, `${status} tasks: kept (no age set)`);
      const count = `${due.capped ? 'at least ' : ''}${due.count.toLocaleString('en')}`;
      return el(
        'li',
        { dataset: { status } },
        `${status} tasks older than ${age(due.afterMs)}: `,
        el('strong', { dataset: { field: 'due' } }, count),
        ' removed by the next retention run',
      );
    }),
  );
}

function chartSeries(snapshot) {
  const end = Math.floor(snapshot.at / 60_000) * 60_000;
  const byMinute = new Map(snapshot.minutes.map((m) => [m.minute, m]));
  const xs = [];
  const done = [];
  const dead = [];
  const run = [];
  const latency = [];
  for (let i = 59; i >= 0; i--) {
    const minute = end - i * 60_000;
    const row = byMinute.get(minute);
    xs.push(minute / 1000);
    done.push(row ? row.done : 0);
    dead.push(row ? row.dead : 0);
    run.push(row ? row.runMs : null);
    latency.push(row ? row.latencyMs : null);
  }
  return { throughput: [xs, done, dead], latency: [xs, run, latency] };
}

function renderCharts(snapshot) {
  if (typeof uPlot !== 'function') return;
  const data = chartSeries(snapshot);
  const width = Math.max(320, $('charts').clientWidth - 40);
  if (!charts.throughput) {
    charts.throughput = new uPlot(
      {
        title: 'Finished tasks per minute',
        width,
        height: 180,
        series: [
          {},
          { label: 'done', stroke: '#1f7a3a', width: 2, points: { show: true } },
          { label: 'dead', stroke: '#a12626', width: 2, points: { show: true } },
        ],
        axes: [{}, { label: 'tasks' }],
      },
      data.throughput,
      $('throughput-chart'),
    );
    charts.latency = new uPlot(
      {
        title: 'Mean time per done task (ms)',
        width,
        height: 180,
        series: [
          {},
          { label: 'run (claim → done)', stroke: '#1558b0', width: 2, points: { show: true } },
          { label: 'latency (due → done)', stroke: '#b06a15', width: 2, points: { show: true } },
        ],
        axes: [{}, { label: 'ms' }],
      },
      data.latency,
      $('latency-chart'),
    );
  } else {
    charts.throughput.setData(data.throughput);
    charts.latency.setData(data.latency);
  }
}

function retryButton(id) {
  return el(
    'button',
    { type: 'button', className: 'retry', dataset: { id }, onclick: () => retry(id) },
    'Retry',
  );
}

function idButton(id) {
  return el(
    'button',
    { type: 'button', className: 'link task-link', dataset: { id }, onclick: () => showTask(id) },
    id,
  );
}

function renderProblems(snapshot) {
  const tasks = [...snapshot.problems.dead, ...snapshot.problems.failed];
  // Rebuild only on a change: a row rebuilt under the pointer would swallow a click on its Retry button.
  const signature = JSON.stringify([tasks, snapshot.readOnly]);
  if (signature === state.problems) return;
  state.problems = signature;
  fill(
    $('problem-table').tBodies[0],
    tasks.map((t) =>
      el(
        'tr',
        { dataset: { id: t.id, status: t.status } },
        el('td', {}, idButton(t.id)),
        el('td', {}, t.kind),
        el('td', {}, t.status),
        el('td', { className: 'num' }, `${t.attempts}/${t.maxAttempts}`),
        el('td', { className: 'error' }, t.lastError ?? ''),
        el('td', {}, state.readOnly ? '' : retryButton(t.id)),
      ),
    ),
  );
}

function renderLocks(snapshot) {
  const view = snapshot.locks;
  const body = $('lock-table').tBodies[0];
  if (!view) {
    $('locks-backend').textContent = '';
    $('locks-note').textContent = 'no lock backend configured';
    state.locks = '';
    return fill(body, []);
  }
  $('locks-backend').textContent = `(${view.backend}${view.prefix ? `, prefix ${view.prefix}` : ''})`;
  $('locks-note').textContent = !view.listable
    ? `the ${view.backend} backend cannot list its locks`
    : view.error
      ? `could not list locks: ${view.error}`
      : locksNote(view);
  // Rebuild the rows only when the holders or their lines change (a row rebuilt under the pointer would
  // swallow a click on its button); the age and lease cells are updated in place.
  const signature = JSON.stringify([
    view.holders.map((h) => [h.key, h.sessionId, h.fence, h.value, h.acquiredAt, h.waiters, h.waitersTotal]),
    view.line,
    state.readOnly,
    view.forceRelease,
  ]);
  if (signature === state.locks) {
    const rows = body.rows;
    view.holders.forEach((h, i) => {
      const row = rows[i];
      if (!row) return;
      row.querySelector('td[data-field="age"]').textContent = ageText(h);
      row.querySelector('td[data-field="lease"]').textContent = leaseText(h);
    });
    return;
  }
  state.locks = signature;
  fill(
    body,
    view.holders.map((h) =>
      el(
        'tr',
        { dataset: { key: h.key } },
        el('td', {}, h.key),
        el('td', {}, h.sessionId),
        el('td', { className: 'num', dataset: { field: 'fence' } }, h.fence),
        el(
          'td',
          {
            className: 'num',
            dataset: { field: 'age', acquiredAt: h.acquiredAt ?? '' },
            title: h.acquiredAt === null ? '' : `taken at ${new Date(h.acquiredAt).toISOString()}`,
          },
          ageText(h),
        ),
        el('td', { className: 'num', dataset: { field: 'lease' } }, leaseText(h)),
        el('td', { dataset: { field: 'waiters' } }, waitersText(h, view.line)),
        el('td', {}, h.value ?? ''),
        el('td', {}, state.readOnly || !view.forceRelease ? '' : releaseButton(h, view.releaseRisks)),
      ),
    ),
  );
}

/** What the columns mean on this backend. */
function locksNote(view) {
  const parts = [`${view.holders.length}${view.truncated ? '+' : ''} held.`];
  parts.push(
    view.holderTimes
      ? "Age: since the holder took the key, from the backend's record, on the clock named (the server's, or the holder's own), against this console's clock. Lease left: how long the key stays taken if its holder stops renewing now, as the backend reports it (\"≤\": an upper bound, where the backend gives no exact figure)."
      : `The ${view.backend} backend reports no acquisition times or remaining leases.`,
  );
  if (view.line === 'none') {
    parts.push(
      `The ${view.backend} backend keeps no waiting line: blocking acquisitions poll and race for a released key, so there are no waiters to show.`,
    );
  } else if (view.line === 'unlisted') {
    parts.push(`The ${view.backend} backend keeps a waiting line but cannot list it.`);
  } else if (view.waitersError) {
    parts.push(`Could not read some waiting lines: ${view.waitersError}`);
  }
  return parts.join(' ');
}

/** Semaphores found among the listed locks: permits held of the limit, who holds them, who waits. */
function renderSemaphores(snapshot) {
  const view = snapshot.locks;
  const rows = view?.semaphores ?? [];
  $('semaphores-note').textContent = !view
    ? ''
    : !view.listable
      ? `the ${view.backend} backend cannot list its locks, so its semaphores are not found here (baton semaphore show <name> --limit <n> reads them)`
      : rows.length === 0
        ? "no permit is held now (a semaphore appears while one of its permits is held; a worker's --limit kind=n is the semaphore limit/<kind>)"
        : 'Permits are the locks <name>/slot/<i>; each records the limit it was taken under.';
  fill(
    $('semaphore-table').tBodies[0],
    rows.map((s) =>
      el(
        'tr',
        { dataset: { name: s.name } },
        el('td', {}, s.name),
        el(
          'td',
          { dataset: { field: 'permits' } },
          s.limits.length === 1
            ? `${s.permits.length} of ${s.limits[0]} held, ${s.free} free`
            : `${s.permits.length} held; limits disagree: ${s.limits.join(', ')}`,
        ),
        el(
          'td',
          { dataset: { field: 'holders' } },
          s.permits
            .map(
              (p) =>
                `${p.slot}: ${p.sessionId}, fence ${p.fence}${p.ageMs === null ? '' : `, ${duration(p.ageMs)}`}${p.value === null ? '' : ` (${p.value})`}`,
            )
            .join('; '),
        ),
        el('td', { dataset: { field: 'waiting' } }, semaphoreWaitingText(s.waiting)),
      ),
    ),
  );
}

function semaphoreWaitingText(waiting) {
  if (!waiting.queued) return 'no line (waiters poll the slots)';
  if (waiting.head === null) return 'none';
  const behind =
    waiting.behind === null ? '' : waiting.behind === 0 ? ', nobody behind' : `, ${waiting.behind} behind`;
  return `${waiting.head} first${behind}`;
}

function ageText(h) {
  if (h.ageMs === null) return '–';
  return `${duration(h.ageMs)} (${h.acquiredAtSource === 'server' ? 'server' : 'holder'} clock)`;
}

function leaseText(h) {
  if (h.leaseRemainingMs !== null) return duration(h.leaseRemainingMs);
  if (h.leaseRemainingAtMostMs !== null) return `≤ ${duration(h.leaseRemainingAtMostMs)}`;
  return '–';
}

function waitersText(h, line) {
  if (line === 'none') return 'no line';
  if (h.waiters === null) return '–';
  if (h.waiters.length === 0) return 'none';
  const shown = h.waiters.map((w) => `${w.position}. ${w.sessionId}`).join(', ');
  return h.waitersTotal > h.waiters.length ? `${shown} (+${h.waitersTotal - h.waiters.length} more)` : shown;
}

function releaseButton(holder, risks) {
  return el(
    'button',
    {
      type: 'button',
      className: 'release',
      dataset: { key: holder.key },
      onclick: () => forceRelease(holder, risks),
    },
    'Force release',
  );
}

/** Asks first, saying what it risks; only a confirmed release is sent (with the token). */
async function forceRelease(holder, risks) {
  if (!state.token) return say('enter the console token first (BATON_CONSOLE_TOKEN)', false);
  const question = [
    `Force-release lock "${holder.key}", held by session ${holder.sessionId} with fence ${holder.fence}?`,
    '',
    'What it risks:',
    ...risks.map((risk) => `- ${risk}`),
  ].join('\n');
  if (!window.confirm(question)) return say(`lock ${holder.key}: not released`);
  const response = await fetch('/api/locks/release', {
    method: 'POST',
    headers: { ...headers(), 'Content-Type': 'application/json' },
    body: JSON.stringify({ key: holder.key, force: true }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok)
    return say(`release of ${holder.key} refused (${response.status}): ${body.message ?? ''}`, false);
  say(
    body.released
      ? `lock ${holder.key} released (was session ${body.previousHolder?.sessionId ?? '?'}, fence ${body.previousHolder?.fence ?? '?'})`
      : `lock ${holder.key}: nobody held it; nothing was released`,
  );
}

function renderLeaders(snapshot) {
  fill(
    $('leader-table').tBodies[0],
    snapshot.leaders.map((row) =>
      el(
        'tr',
        { dataset: { key: row.key } },
        el('td', {}, row.key),
        el('td', {}, row.leader ? row.leader.id : row.error ? `error: ${row.error}` : 'no leader'),
        el('td', { className: 'num' }, row.leader ? row.leader.term : ''),
        el('td', {}, row.leader ? row.leader.sessionId : ''),
        el('td', {}, row.leader?.startedAt ? time(row.leader.startedAt) : ''),
        el('td', {}, row.leader ? JSON.stringify(row.leader.published) : ''),
      ),
    ),
  );
}

const WORKER_STATES = {
  alive: 'alive',
  silent: 'silent (missed beats)',
  stopped: 'stopped',
  unknown: 'no heartbeat',
};

function workerSince(w) {
  if (w.state === 'stopped') return w.stoppedAt ? `stopped ${time(w.stoppedAt)}` : 'stopped';
  if (w.startedAt) return time(w.startedAt);
  return w.runningSince ? `running since ${time(w.runningSince)}` : '';
}

function workerRate(w) {
  if (!w.rates) return '';
  const parts = [`${w.rates.done}/min`];
  if (w.rates.failed > 0) parts.push(`${w.rates.failed} failed/min`);
  if (w.rates.dead > 0) parts.push(`${w.rates.dead} dead/min`);
  return parts.join(', ');
}

function workerTotals(w) {
  if (!w.counters) return '';
  const c = w.counters;
  return `${c.completed} done, ${c.failed} retried, ${c.dead} dead, ${c.leaseLost} lease lost`;
}

function renderWorkers(snapshot) {
  fill(
    $('worker-table').tBodies[0],
    snapshot.workers.map((w) =>
      el(
        'tr',
        { dataset: { worker: w.id, state: w.state } },
        el(
          'td',
          {},
          w.id,
          w.host === null
            ? null
            : el(
                'div',
                { className: 'note' },
                el('span', { dataset: { field: 'where' } }, `${w.host} (pid ${w.pid})`),
                ' · ',
                el('span', { dataset: { field: 'mode' } }, `${w.mode} / ${w.locks}`),
              ),
        ),
        el(
          'td',
          { className: `worker-${w.state}`, dataset: { field: 'state' } },
          WORKER_STATES[w.state] ?? w.state,
        ),
        el('td', { dataset: { field: 'since' } }, workerSince(w)),
        el('td', { dataset: { field: 'beat' } }, w.beatAgeMs === null ? '–' : `${duration(w.beatAgeMs)} ago`),
        el('td', { className: 'num', dataset: { field: 'running' } }, w.running),
        el('td', { dataset: { field: 'tasks' } }, w.tasks.join(', ')),
        el('td', { className: 'num', dataset: { field: 'rate' } }, workerRate(w)),
        el('td', { className: 'num', dataset: { field: 'done' } }, w.done),
        el('td', { className: 'num', dataset: { field: 'dead' } }, w.dead),
        el('td', { dataset: { field: 'totals' } }, workerTotals(w)),
      ),
    ),
  );
}

function renderMode() {
  $('mode').textContent = state.readOnly
    ? 'read-only'
    : state.token
      ? 'actions enabled'
      : 'token needed for actions';
}

function render(snapshot) {
  state.readOnly = snapshot.readOnly;
  renderMode();
  renderCounts(snapshot);
  renderStorage(snapshot);
  renderCharts(snapshot);
  renderProblems(snapshot);
  renderWorkers(snapshot);
  renderLocks(snapshot);
  renderSemaphores(snapshot);
  renderLeaders(snapshot);
  document.body.dataset.seq = String(snapshot.seq);
}

function taskRow(t) {
  return el(
    'tr',
    { dataset: { id: t.id, status: t.status } },
    el('td', {}, idButton(t.id)),
    el('td', {}, t.kind),
    el('td', {}, t.status),
    el('td', { className: 'num' }, `${t.attempts}/${t.maxAttempts}`),
    el('td', {}, t.workerId ?? ''),
    el('td', {}, time(t.createdAt)),
    el('td', { className: 'error' }, t.lastError ?? ''),
  );
}

async function loadList(append) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(state.listQuery)) if (value) params.set(name, value);
  try {
    const page = await getJson(`/api/tasks?${params}`);
    const body = $('task-table').tBodies[0];
    const rows = page.tasks.map(taskRow);
    if (append) body.append(...rows);
    else body.replaceChildren(...rows);
    $('older').hidden = page.next === null;
    state.listQuery.before = page.next;
    $('list-note').textContent =
      page.tasks.length === 0 && page.next ? `no match in ${page.scanned} rows; look further with Older` : '';
  } catch (error) {
    say(`search: ${error.message}`, false);
  }
}

async function showTask(id) {
  try {
    const task = await getJson(`/api/tasks/${encodeURIComponent(id)}`);
    $('detail').hidden = false;
    $('detail-id').textContent = task.id;
    const fields = [
      ['status', task.status],
      ['kind', task.kind],
      ['key', task.key ?? '–'],
      ['attempts', `${task.attempts} of ${task.maxAttempts}`],
      ['fence', task.fence ?? '–'],
      ['worker', task.workerId ?? '–'],
      ['run at', time(task.runAt)],
      ['created', time(task.createdAt)],
      ['claimed', time(task.claimedAt)],
      ['finished', time(task.finishedAt)],
    ];
    $('detail-fields').replaceChildren(
      ...fields.flatMap(([name, value]) => [
        el('dt', {}, name),
        el('dd', { dataset: { field: name } }, String(value)),
      ]),
    );
    $('detail-payload').textContent = JSON.stringify(task.payload, null, 2);
    $('detail-result').textContent =
      task.result === undefined || task.result === null ? '–' : JSON.stringify(task.result, null, 2);
    $('detail-error').textContent = task.lastError ?? '–';
    const button = $('detail-retry');
    button.hidden = state.readOnly || (task.status !== 'dead' && task.status !== 'failed');
    button.dataset.id = task.id;
  } catch (error) {
    say(`task ${id}: ${error.message}`, false);
  }
}

async function retry(id) {
  if (!state.token) return say('enter the console token first (BATON_CONSOLE_TOKEN)', false);
  const response = await fetch(`/api/tasks/${encodeURIComponent(id)}/retry`, {
    method: 'POST',
    headers: headers(),
  });
  const body = await response.json().catch(() => ({}));
  if (response.ok) say(`task ${id} retried: it is due now`);
  else say(`retry of task ${id} refused (${response.status}): ${body.message ?? ''}`, false);
  if (!$('detail').hidden && $('detail-id').textContent === id) showTask(id);
}

/**
 * Says when the refresh loop slows down because reads are slow (a big table): it reads a tenth of the time
 * at most. A few percent slower than asked is not worth a line.
 */
function renderPace(snapshot) {
  const slowed = snapshot.nextRefreshMs > snapshot.refreshMs * 1.2;
  $('live').title =
    `refresh every ${duration(snapshot.nextRefreshMs)}; the last read took ${snapshot.readMs} ms`;
  $('pace').textContent = slowed
    ? `refreshing every ${duration(snapshot.nextRefreshMs)}, not ${duration(snapshot.refreshMs)}: reads take ${snapshot.readMs} ms`
    : '';
}

function connect() {
  const live = $('live');
  const events = new EventSource('/api/events');
  events.addEventListener('snapshot', (event) => {
    live.textContent = 'live';
    live.className = 'badge ok';
    live.removeAttribute('title');
    $('refresh-error').textContent = '';
    const snapshot = JSON.parse(event.data);
    renderPace(snapshot);
    render(snapshot);
  });
  // The shared refresh failed (the database is down or refused): say so; the next good snapshot clears it.
  events.addEventListener('refresh-error', (event) => {
    const failure = JSON.parse(event.data);
    live.textContent = 'refresh failing';
    live.className = 'badge bad';
    live.title = failure.message;
    const since = failure.lastGoodAt
      ? `; the figures below are from ${new Date(failure.lastGoodAt).toLocaleTimeString()}`
      : '';
    $('refresh-error').textContent =
      `${failure.message} (${failure.failures} refresh${failure.failures === 1 ? '' : 'es'} failed in a row, at ${new Date(failure.at).toLocaleTimeString()}${since})`;
  });
  events.addEventListener('error', () => {
    live.textContent = 'reconnecting…';
    live.className = 'badge bad';
  });
}

function init() {
  $('token').value = state.token;
  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    state.token = $('token').value.trim();
    sessionStorage.setItem('baton-console-token', state.token);
    say(state.token ? 'token set for this tab' : 'token cleared');
    renderMode();
  });
  $('search').addEventListener('submit', (event) => {
    event.preventDefault();
    state.listQuery = {
      q: $('q').value.trim(),
      status: $('status').value,
      kind: $('kind').value.trim(),
      before: null,
    };
    loadList(false);
  });
  $('older').addEventListener('click', () => loadList(true));
  $('detail-retry').addEventListener('click', () => retry($('detail-retry').dataset.id));
  state.listQuery = { q: '', status: '', kind: '', before: null };
  loadList(false);
  connect();
}

init();

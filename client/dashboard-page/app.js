// netpulse dashboard: polls /api/dashboard (passing ?as_of= through) and draws it with Chart.js.
const REFRESH_MS = 3000;
const HEAVY_ROWS = 15;
const number = new Intl.NumberFormat('en-US');
const fmt = (v) => (v === null || v === undefined ? '–' : number.format(Number(v)));
const mbps = (v) => {
  const n = Number(v ?? 0);
  return n >= 1000 ? `${new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 }).format(n / 1000)} Gbps` : `${fmt(n)} Mbps`;
};
const pct = (v) => (v === null || v === undefined ? '–' : `${new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 }).format(Number(v))} %`);
const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
const byDevice = (rows, key) => Object.fromEntries((rows ?? []).map((r) => [r.dispositivo, r[key]]));
const ago = (seconds) => (seconds === null ? 'no refresh yet' : seconds < 120 ? `${seconds} s ago` : `${Math.round(seconds / 60)} min ago`);
const charts = {};
// Lines with equal values lie on top of each other (Chart.js draws the first series on top): every
// line is dashed, so the ones beneath show through its gaps, and has its own colour and point style.
const SERIES_STYLES = [
  { color: '#1a73e8', dash: [10, 5], point: 'circle' },
  { color: '#d93025', dash: [3, 3], point: 'rect' },
  { color: '#188038', dash: [14, 4, 3, 4], point: 'triangle' },
  { color: '#9334e6', dash: [6, 6], point: 'rectRot' },
  { color: '#e8710a', dash: [1, 4], point: 'crossRot' },
  { color: '#5f6368', dash: [20, 5], point: 'star' },
];
const seriesStyle = (index) => {
  const { color, dash, point } = SERIES_STYLES[index % SERIES_STYLES.length];
  return { borderColor: color, backgroundColor: color, borderDash: dash, pointStyle: point, pointRadius: 3 };
};
// A server's marks, the stronger first: load above the threshold all through gold's window, and load
// above 100 % in this snapshot (a peak the window does not flag yet).
const SERVER_FLAGS = [
  { column: 'needs_upgrade', className: 'upgrade', label: 'needs an upgrade', color: '#d93025' },
  { column: 'over_capacity_now', className: 'over-capacity', label: 'over capacity now', color: '#e8710a' },
];
const flagsOf = (server) => SERVER_FLAGS.filter((flag) => server[flag.column]);

function chart(id, type, data, options = {}) {
  if (charts[id]) {
    charts[id].data = data;
    charts[id].update('none');
    return;
  }
  charts[id] = new Chart(document.getElementById(id), { type, data, options: { animation: false, maintainAspectRatio: false, ...options } });
}

function fillTable(id, rows, cells, rowClass = () => '') {
  const body = $(id).querySelector('tbody');
  body.replaceChildren(...rows.map((row) => {
    const tr = document.createElement('tr');
    tr.className = rowClass(row);
    for (const cell of cells(row)) {
      const td = document.createElement('td');
      if (cell instanceof Node) td.append(cell); else td.textContent = cell;
      tr.append(td);
    }
    return tr;
  }));
}

function render(data) {
  const t = data.report.tables;
  $('gold-version').textContent = data.report.version ?? '–';
  $('as-of').textContent = data.report.asOf ?? '–';
  $('gold-age').textContent = ago(data.secondsSinceGold);
  const now = byDevice(t.connections_now, 'connected');
  const off = byDevice(t.connections_now, 'disconnected');
  $('connected-total').textContent = fmt(now.Total);
  $('connected-split').textContent = `Computador ${fmt(now.Computador)} · Celular ${fmt(now.Celular)}`;
  $('disconnected-total').textContent = fmt(off.Total);
  $('disconnected-split').textContent = `Computador ${fmt(off.Computador)} · Celular ${fmt(off.Celular)}`;
  const recent = byDevice(t.devices_last_10_min, 'devices_connected');
  $('devices-last-10').textContent = fmt(recent.Total);
  $('devices-last-10-split').textContent = `Computador ${fmt(recent.Computador)} · Celular ${fmt(recent.Celular)}`;
  const bw = byDevice(t.bandwidth_now, 'mbps_in_use');
  $('bandwidth-now').textContent = mbps(bw.Total);
  $('bandwidth-split').textContent = `Computador ${mbps(bw.Computador)} · Celular ${mbps(bw.Celular)}`;
  const share = (t.high_speed_share ?? [])[0] ?? {};
  $('high-speed-share').textContent = pct(share.share_pct);
  $('high-speed-detail').textContent = `${fmt(share.high_speed_devices)} of ${fmt(share.connected_devices)} connected on ≥ ${fmt(share.threshold_mbps)} Mbps plans`;

  const minutes = [...new Set(data.eventsLastHour.map((r) => r.minute))];
  const series = [...new Set(data.eventsLastHour.map((r) => `${r.dispositivo} ${r.status}`))].sort();
  chart('events-chart', 'line', {
    labels: minutes.map((m) => m.slice(11, 16)),
    datasets: series.map((name, i) => ({
      label: name, tension: 0.2, ...seriesStyle(i),
      data: minutes.map((m) => Number(data.eventsLastHour.find((r) => r.minute === m && `${r.dispositivo} ${r.status}` === name)?.events ?? 0)),
    })),
  });
  chart('bandwidth-chart', 'line', {
    labels: data.bandwidthOverTime.map((r) => r.as_of.slice(11, 19)),
    datasets: [{ label: 'Mbps in use', data: data.bandwidthOverTime.map((r) => Number(r.mbps_in_use)), fill: true, pointRadius: 0 }],
  }, { plugins: { tooltip: { callbacks: { label: (c) => mbps(c.raw) } } } });
  const devices = (t.bandwidth_by_device ?? []).filter((r) => r.dispositivo !== 'Total');
  chart('device-chart', 'bar', {
    labels: devices.map((r) => r.dispositivo),
    datasets: ['sum_mbps', 'avg_mbps', 'p50_mbps', 'p95_mbps'].map((k) => ({ label: k.replace('_mbps', ''), data: devices.map((r) => Number(r[k])) })),
  }, { scales: { y: { type: 'logarithmic' } } });
  const servers = [...(t.server_load ?? [])].sort((a, b) => b.utilisation_pct - a.utilisation_pct);
  chart('servers-chart', 'bar', {
    labels: servers.map((s) => s.servidor),
    datasets: [{ label: 'utilisation %', data: servers.map((s) => s.utilisation_pct), backgroundColor: servers.map((s) => flagsOf(s)[0]?.color ?? '#5b8def') }],
  }, { indexAxis: 'y', plugins: { legend: { display: false } } });
  // The capacity forecast: days until full at the server's trend, or why there is no forecast.
  const forecasts = new Map((t.capacity_forecast ?? []).map((f) => [f.servidor, f]));
  const fullIn = (s) => {
    const f = forecasts.get(s.servidor);
    if (!f) return '–';
    return f.forecast === 'forecast' ? `${fmt(Number(f.days_until_full))} days` : f.forecast;
  };
  fillTable('servers', servers,
    (s) => [s.servidor, fmt(s.devices_connected), mbps(s.mbps_in_use), mbps(s.capacity_mbps), pct(s.utilisation_pct), fullIn(s), flagsOf(s).map((f) => f.label).join(', ')],
    (s) => flagsOf(s).map((f) => f.className).join(' '));
  // The heaviest first; the table shows the top HEAVY_ROWS, the heading says how many there are
  // (gold lists each server's heaviest and counts them all in heavy_on_server).
  const heavy = [...(t.heavy_clients ?? [])].sort((a, b) => b.times_median - a.times_median || b.velocidade_mbps - a.velocidade_mbps);
  const heavyTotal = [...new Map(heavy.map((c) => [c.servidor, Number(c.heavy_on_server ?? 0)])).values()].reduce((a, b) => a + b, 0);
  $('heavy-count').textContent = heavyTotal > HEAVY_ROWS ? `(top ${HEAVY_ROWS} of ${fmt(heavyTotal)})` : `(${fmt(heavyTotal)})`;
  fillTable('heavy-clients', heavy.slice(0, HEAVY_ROWS), (c) => [`${c.nome} (${c.ip})`, c.dispositivo, c.servidor, mbps(c.velocidade_mbps), `${c.times_median}×`, mbps(c.throttle_to_mbps)]);
  renderPipeline(data.pipeline, Object.fromEntries(data.owners.map((o) => [o.owner, o.committed_at])));
  const rules = data.quarantine.silverByRule.map((r) => `${r.rule} ${fmt(r.rows)}`).join(', ');
  $('quarantine').textContent = `Quarantine: ${fmt(data.quarantine.bronzeFiles)} landing files; silver rows by rule: ${rules || 'none'}`;
}

/** Pipeline health: each owner, what it waits for or why it is stuck or retrying (also when the lake cannot be read). */
function renderPipeline(pipeline, commits) {
  fillTable('pipeline', pipeline, (o) => {
    const link = document.createElement('a');
    link.href = o.url;
    link.textContent = o.workflowId;
    link.target = '_blank';
    const owner = o.layer === 'bronze' ? `bronze.${o.workflowId.replace(/^bronze-/, '').replace(/-/g, '_')}` : o.layer;
    const waiting = typeof o.lagFiles === 'number' ? fmt(o.lagFiles) : o.lagFiles ?? '0';
    return [link, o.layer, o.error ?? o.retrying ?? waiting, o.lastPassAt ? o.lastPassAt.slice(11, 19) : '–', (commits[owner] ?? '–').slice(11, 19)];
  }, (o) => (o.error ? 'stuck' : o.retrying ? 'retrying' : ''));
}

/** The throttle panel: open throttles with the decisions each state takes, then the last few that ended. */
const ACTIONS = { proposed: ['approve', 'reject'], approved: ['lift'], applied: ['lift'], 'in force': ['lift'], failed: ['lift'] };
// The panel is rebuilt only when its rows change: a rebuild between a button's mousedown and
// mouseup would swallow the operator's click.
let shownThrottles = '';
function renderThrottles({ throttles, ended }) {
  const shown = JSON.stringify([throttles, ended]);
  if (shown === shownThrottles) return;
  shownThrottles = shown;
  $('throttle-count').textContent = `${fmt(throttles.filter((t) => t.state === 'proposed').length)} proposed, ${fmt(throttles.filter((t) => t.state === 'in force').length)} in force`;
  fillTable('throttles', [...throttles, ...ended], (t) => {
    const buttons = document.createElement('span');
    for (const action of ACTIONS[t.state] ?? []) {
      const button = document.createElement('button');
      button.textContent = action;
      button.dataset.action = action;
      button.addEventListener('click', () => decide(t.client, action, button));
      buttons.append(button);
    }
    return [t.client, t.servidor ?? '–', t.state, t.plan_mbps === null ? '–' : mbps(t.plan_mbps), t.limit_mbps === null ? '–' : mbps(t.limit_mbps),
      t.since.replace('T', ' ').slice(0, 19), t.actor, t.reason ?? '', buttons];
  }, (t) => `throttle ${t.state.replace(' ', '-')}`);
}

async function decide(client, action, button) {
  button.disabled = true;
  const message = $('throttle-message');
  message.textContent = `${action} ${client}…`;
  const response = await fetch('/api/throttles/decide', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client, action, reason: $('throttle-reason').value }),
  });
  const body = await response.json();
  message.textContent = response.ok ? `${client}: ${body.state}` : `error: ${body.error}`;
  await refreshThrottles();
}

async function refreshThrottles() {
  const response = await fetch('/api/throttles');
  const body = await response.json();
  if (response.ok) renderThrottles(body);
  else $('throttle-count').textContent = `error: ${body.error}`;
}

async function refresh() {
  // The throttles refresh on their own: a slow answer about the pipeline must not hold them back.
  refreshThrottles().catch((error) => { $('throttle-count').textContent = `error: ${error.message}`; });
  const status = $('status');
  try {
    const response = await fetch(`/api/dashboard${location.search}`);
    const body = await response.json();
    if (!response.ok) {
      if (body.pipeline) renderPipeline(body.pipeline, {});
      throw new Error(body.error ?? response.statusText);
    }
    render(body);
    status.textContent = `updated ${new Date().toLocaleTimeString('en-GB')}`;
    status.className = '';
    document.body.dataset.version = body.report.version ?? '';
  } catch (error) {
    status.textContent = `error: ${error.message}`;
    status.className = 'error';
  }
}

refresh();
// A page pinned to ?as_of= shows the past: it does not need to refresh.
if (!new URLSearchParams(location.search).has('as_of')) setInterval(refresh, REFRESH_MS);

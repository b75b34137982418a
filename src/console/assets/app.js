// The gapless console: plain JavaScript, no library. Every number comes from /api/ (the
// same code as `gapless status --json`, `gapless gaps --json`, ...); the pages only show it.
'use strict';
const main = document.getElementById('main');
let timer = null;

function token() { return sessionStorage.getItem('gapless-token') || ''; }

async function api(path) {
  const headers = token() ? { Authorization: 'Bearer ' + token() } : {};
  const r = await fetch(path, { headers });
  if (r.status === 401) {
    document.getElementById('login').hidden = false;
    throw new Error('this console needs its token');
  }
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || ('HTTP ' + r.status));
  return body;
}

document.getElementById('login').addEventListener('submit', (e) => {
  e.preventDefault();
  sessionStorage.setItem('gapless-token', document.getElementById('token').value.trim());
  document.getElementById('login').hidden = true;
  route();
});

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;',
                                                '"': '&quot;', "'": '&#39;' }[c]));
}
function time(ns) { return ns ? new Date(Number(ns) / 1e6).toISOString().replace('.000', '') : 'never'; }
function ago(ns, now) {
  if (!ns) return 'never';
  const s = Math.round((now - ns) / 1e9);
  return s < 120 ? s + ' s ago' : s < 7200 ? Math.round(s / 60) + ' min ago' : Math.round(s / 3600) + ' h ago';
}
function state(s) { return `<span class="state ${s}" data-state="${s}">${s.toUpperCase()}</span>`; }
function streamLink(a, e) {
  return `<a href="#/stream/${encodeURIComponent(a)}/${encodeURIComponent(e)}">${esc(a)}/${esc(e.slice(0, 12))}</a>`;
}
function stamp() { document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString(); }
function fail(e) { main.innerHTML = `<p class="error" role="alert">${esc(e.message)}</p>`; }
function poll(fn) { clearInterval(timer); fn(); timer = setInterval(fn, 2000); }

// Overview: every stream, judged on the server, filtered and paged there too.
const ov = { filter: '', state: '', offset: 0, limit: 100 };
function overview() {
  main.innerHTML = `<h1>Overview</h1><div id="ov-totals" class="totals"></div>
    <div class="controls">
      <label>Filter <input id="ov-filter" value="${esc(ov.filter)}" placeholder="agent or epoch"></label>
      <label>State <select id="ov-state"><option value="">all</option><option>red</option>
        <option>amber</option><option>green</option></select></label>
      <button id="ov-prev">Previous page</button><button id="ov-next">Next page</button>
      <span id="ov-page"></span></div>
    <div id="ov-firing"></div>
    <table><thead><tr><th>State</th><th>Stream</th><th>Reason</th><th class="wide">Last heartbeat</th>
      <th class="n">Head</th><th class="n">Stored</th><th class="n">Lag</th><th class="n">Open gaps</th>
      <th class="n">Declared lost</th><th class="n">Alerts</th></tr></thead><tbody id="ov-rows"></tbody></table>`;
  document.getElementById('ov-state').value = ov.state;
  document.getElementById('ov-filter').addEventListener('input', (e) => { ov.filter = e.target.value; ov.offset = 0; load(); });
  document.getElementById('ov-state').addEventListener('change', (e) => { ov.state = e.target.value; ov.offset = 0; load(); });
  document.getElementById('ov-prev').addEventListener('click', () => { ov.offset = Math.max(0, ov.offset - ov.limit); load(); });
  document.getElementById('ov-next').addEventListener('click', () => { ov.offset += ov.limit; load(); });
  async function load() {
    try {
      const q = new URLSearchParams({ offset: ov.offset, limit: ov.limit });
      if (ov.filter) q.set('filter', ov.filter);
      if (ov.state) q.set('state', ov.state);
      const d = await api('/api/overview?' + q);
      const t = d.totals;
      document.getElementById('ov-totals').innerHTML =
        `<div>Streams <b data-total="streams">${t.streams}</b></div>
         <div>${state('red')} <b data-total="red">${t.red}</b></div>
         <div>${state('amber')} <b data-total="amber">${t.amber}</b></div>
         <div>${state('green')} <b data-total="green">${t.green}</b></div>
         <div>Stored <b data-total="stored">${t.stored}</b></div>
         <div>Open gaps <b data-total="open_gaps">${t.open_gaps}</b></div>
         <div>Declared lost <b data-total="declared_losses">${t.declared_losses}</b></div>
         <div>Alerts firing <b data-total="alerts">${t.alerts}</b></div>`;
      document.getElementById('ov-firing').innerHTML = d.firing.length
        ? '<h2>Firing</h2><ul>' + d.firing.map((a) => `<li>${esc(a.severity)} <b>${esc(a.name)}</b> [${esc(a.subject)}]: ${esc(a.summary)}</li>`).join('') + '</ul>'
        : '';
      document.getElementById('ov-page').textContent =
        `${d.matched ? d.offset + 1 : 0}–${Math.min(d.matched, d.offset + d.limit)} of ${d.matched}`;
      document.getElementById('ov-rows').innerHTML = d.streams.map((s) =>
        `<tr data-stream="${esc(s.agent + '/' + s.epoch)}"><td>${state(s.state)}</td><td>${streamLink(s.agent, s.epoch)}</td>
         <td>${esc(s.reason)}</td><td class="wide">${ago(s.last_heartbeat_ns, d.now_ns)}</td>
         <td class="n" data-k="head">${s.head}</td><td class="n" data-k="stored">${s.stored}</td>
         <td class="n" data-k="lag">${s.lag}</td><td class="n" data-k="open_gaps">${s.open_gaps}</td>
         <td class="n" data-k="declared_losses">${s.declared_losses}</td><td class="n" data-k="alerts">${s.alerts}</td></tr>`).join('')
        || '<tr><td colspan="10">No agent has connected yet.</td></tr>';
      stamp();
    } catch (e) { fail(e); clearInterval(timer); }
  }
  poll(load);
}

// A stream: its seqs over time, what is missing and why, its signed checkpoints, proofs.
function streamPage(agent, epoch) {
  main.innerHTML = `<h1>Stream ${esc(agent)}/${esc(epoch)}</h1><div id="st"></div>
    <h2>Proofs</h2>
    <form id="inc" class="controls"><label>Inclusion proof of seq <input id="inc-seq" inputmode="numeric" size="10"></label>
      <button type="submit">Download inclusion proof</button></form>
    <form id="con" class="controls"><label>Consistency proof from signed size <input id="con-size" inputmode="numeric" size="10"></label>
      <button type="submit">Download consistency proof</button></form><p id="proof-msg" role="status"></p>`;
  const base = `agent=${encodeURIComponent(agent)}&epoch=${encodeURIComponent(epoch)}`;
  async function download(kind, n) {
    const key = kind === 'inclusion' ? 'seq' : 'old_size';
    const headers = token() ? { Authorization: 'Bearer ' + token() } : {};
    const r = await fetch(`/api/proof/${kind}?${base}&${key}=${encodeURIComponent(n)}`, { headers });
    const text = await r.text();
    const msg = document.getElementById('proof-msg');
    if (!r.ok) { msg.textContent = JSON.parse(text).error; msg.className = 'error'; return; }
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
    a.download = `${kind}-${agent}-${n}.json`;
    document.body.appendChild(a); a.click(); a.remove();
    msg.className = ''; msg.textContent = `Downloaded ${a.download}: check it with gapless verify-proof ${a.download} --key <the collector's verifier key>`;
  }
  document.getElementById('inc').addEventListener('submit', (e) => { e.preventDefault(); download('inclusion', document.getElementById('inc-seq').value); });
  document.getElementById('con').addEventListener('submit', (e) => { e.preventDefault(); download('consistency', document.getElementById('con-size').value); });
  async function load() {
    try {
      const d = await api('/api/stream?' + base);
      const g = d.gaps.streams[0] || { missing: [], expected: 0, received: 0, verdict: 'no records', lost_before_the_spool: [] };
      const svg = timeline(d, g);
      const missing = g.missing.map((m) =>
        `<li data-missing="${m.first}-${m.last}" data-declared="${m.declared}">seqs ${m.first}..${m.last} (${m.last - m.first + 1}): ${m.declared
          ? 'declared lost: <b data-reason>' + esc(m.reason) + '</b>' : '<b class="error">NOT declared by the agent: investigate</b>'}</li>`).join('');
      const losses = d.losses.map((l) => `<li>${l.first}..${l.last}: ${esc(l.reason)} (declared ${time(l.at_ns)})</li>`).join('');
      const cps = d.checkpoints.newest.slice(-10).map((c) => c.size).join(', ');
      const wit = d.witnessed.newest.slice(-5).map((c) => `${c.size} (${c.signers.map(esc).join(', ')})`).join('; ');
      document.getElementById('st').innerHTML =
        `<p>Verdict: <b data-verdict>${esc(g.verdict)}</b> — expected ${g.expected}, received ${g.received}</p>${svg}
         <h2>Missing</h2><ul>${missing || '<li>nothing</li>'}</ul>
         ${g.lost_before_the_spool.length ? '<h2>Lost before the spool</h2><ul>' + g.lost_before_the_spool.map((u) => '<li>' + esc(u) + '</li>').join('') + '</ul>' : ''}
         <h2>Declared losses</h2><ul>${losses || '<li>none</li>'}</ul>
         <h2>Checkpoints</h2><p>Collector: ${d.checkpoints.count} signed; newest sizes ${cps || '—'}</p>
         <p>Witnessed: ${d.witnessed.count}${wit ? '; newest ' + wit : ''}</p>
         <p>Agent checkpoints that matched the store: ${d.agent_checkpoints.count}</p>`;
      stamp();
    } catch (e) { fail(e); clearInterval(timer); }
  }
  poll(load);
}

// The seqs of a stream along time: segments as bars (seq range × time range), missing
// ranges marked on the seq axis — declared (amber, with reason) or undeclared (red).
function timeline(d, g) {
  // A segment the indexer has not summarised yet spans from its base to the next one's.
  const last = g.first_seq + g.expected;
  const segs = d.segments.map((s, i) => s.first_seq !== undefined ? s : {
    first_seq: s.base, end_seq: i + 1 < d.segments.length ? d.segments[i + 1].base : Math.max(last, s.base + 1) });
  const end = Math.max(1, last, ...segs.map((s) => s.end_seq));
  const W = 900, H = 160, x = (q) => 40 + (W - 60) * q / end;
  let body = `<line x1="40" y1="120" x2="${W - 20}" y2="120" stroke="#333"/>`;
  for (const s of segs) {
    body += `<rect x="${x(s.first_seq)}" y="70" width="${Math.max(1, x(s.end_seq) - x(s.first_seq))}" height="40" fill="#1e7b34"><title>seqs ${s.first_seq}..${s.end_seq - 1}${s.min_time_ns ? ', ' + time(s.min_time_ns) + ' to ' + time(s.max_time_ns) : ' (not indexed yet)'}</title></rect>`;
  }
  for (const m of g.missing) {
    const col = m.declared ? '#f5a623' : '#b00020';
    body += `<rect x="${x(m.first)}" y="40" width="${Math.max(2, x(m.last + 1) - x(m.first))}" height="70" fill="${col}"><title>${m.declared ? 'declared lost: ' + esc(m.reason) : 'undeclared gap'} ${m.first}..${m.last}</title></rect>`;
  }
  body += `<text x="40" y="140">seq 0</text><text x="${W - 120}" y="140">seq ${end}</text>
    <text x="40" y="25">green: received · amber: declared lost · red: undeclared gap</text>`;
  return `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="Seqs of the stream: received, declared lost, undeclared gaps">${body}</svg>` + overTime(d, g);
}

// The same seqs against time (the query index's time range of each segment): when each
// range of seqs arrived, and when each loss was declared. Undeclared gaps have no time:
// they are marked on the seq axis on the left.
function overTime(d, g) {
  const segs = d.segments.filter((s) => s.min_time_ns !== undefined);
  if (!segs.length) return '<p>Seqs over time: the query index has not summarised this stream yet (index_interval_seconds).</p>';
  const times = segs.flatMap((s) => [s.min_time_ns, s.max_time_ns]).concat(d.losses.map((l) => l.at_ns));
  const t0 = Math.min(...times), t1 = Math.max(t0 + 1e9, ...times);
  const end = Math.max(1, g.first_seq + g.expected, ...segs.map((s) => s.end_seq));
  const W = 900, H = 220, x = (t) => 60 + (W - 80) * (t - t0) / (t1 - t0), y = (q) => H - 30 - (H - 50) * q / end;
  let body = `<line x1="60" y1="${H - 30}" x2="${W - 20}" y2="${H - 30}" stroke="#333"/><line x1="60" y1="20" x2="60" y2="${H - 30}" stroke="#333"/>`;
  for (const s of segs) {
    body += `<rect x="${x(s.min_time_ns)}" y="${y(s.end_seq)}" width="${Math.max(2, x(s.max_time_ns) - x(s.min_time_ns))}" height="${Math.max(2, y(s.first_seq) - y(s.end_seq))}" fill="#1e7b34"><title>seqs ${s.first_seq}..${s.end_seq - 1} arrived ${time(s.min_time_ns)} to ${time(s.max_time_ns)}</title></rect>`;
  }
  for (const l of d.losses) {
    body += `<rect x="${x(l.at_ns) - 2}" y="${y(l.last + 1)}" width="4" height="${Math.max(2, y(l.first) - y(l.last + 1))}" fill="#f5a623"><title>declared lost at ${time(l.at_ns)}: ${l.first}..${l.last} ${esc(l.reason)}</title></rect>`;
  }
  for (const m of g.missing.filter((m) => !m.declared)) {
    body += `<rect x="52" y="${y(m.last + 1)}" width="8" height="${Math.max(2, y(m.first) - y(m.last + 1))}" fill="#b00020"><title>undeclared gap ${m.first}..${m.last}</title></rect>`;
  }
  body += `<text x="60" y="${H - 10}">${time(t0)}</text><text x="${W - 220}" y="${H - 10}">${time(t1)}</text>
    <text x="2" y="24">${end}</text><text x="2" y="${H - 30}">0</text>`;
  return `<h2>Seqs over time</h2><svg viewBox="0 0 ${W} ${H}" role="img" data-chart="over-time" aria-label="Seqs over time: when each range arrived (green) and when losses were declared (amber)">${body}</svg>`;
}

// Sources: records per bucket against the baseline the monitors use.
function sources() {
  main.innerHTML = `<h1>Sources</h1><div class="controls"><label>Range <select id="src-range">
    <option value="day">last day (10 min)</option><option value="week">last week (hours)</option></select></label></div><div id="src"></div>`;
  const range = document.getElementById('src-range');
  range.addEventListener('change', load);
  async function load() {
    try {
      const d = await api('/api/sources?range=' + range.value);
      document.getElementById('src').innerHTML = (d.sources.map((s) => chart(s, d)).join('') ||
        '<p>No source has sent anything in this range.</p>') + (d.total > d.sources.length ? `<p>${d.sources.length} of ${d.total} sources shown</p>` : '');
      stamp();
    } catch (e) { fail(e); clearInterval(timer); }
  }
  poll(load);
}

function chart(s, d) {
  const W = 900, H = 180, pts = s.points, n = pts.length;
  const max = Math.max(1, ...pts.map((p) => Math.max(p[1], p[2] || 0)));
  const x = (i) => 40 + (W - 60) * i / n, y = (v) => H - 30 - (H - 50) * v / max;
  let body = '';
  const t0 = pts[0][0] * 1e9, t1 = (pts[n - 1][0] + d.bucket_seconds) * 1e9;
  for (const a of s.alerts) {
    const from = Math.max(a.from_ns, t0), to = a.to_ns ? Math.min(a.to_ns, t1) : t1;
    if (to <= t0 || from >= t1) continue;
    body += `<rect x="${x(n * (from - t0) / (t1 - t0))}" y="10" width="${Math.max(2, (W - 60) * (to - from) / (t1 - t0))}" height="${H - 40}" fill="#f5a62355"><title>${esc(a.name)}</title></rect>`;
  }
  let band = '', line = '';
  pts.forEach((p, i) => {
    if (p[2] !== null) band += `<rect x="${x(i)}" y="${y(p[2])}" width="${(W - 60) / n}" height="${Math.max(1, y(p[2] * d.drop_ratio) - y(p[2]))}" fill="#cfe3ff"/>`;
    line += `${i ? 'L' : 'M'}${x(i + 0.5)},${y(p[1])}`;
  });
  body = band + body + `<path d="${line}" fill="none" stroke="#1d2733" stroke-width="1.5"/>`;
  const shaded = s.alerts.map((a) => `${esc(a.name)} from ${time(a.from_ns)}${a.to_ns ? ' to ' + time(a.to_ns) : ' (firing)'}`).join('; ');
  return `<h2>${esc(s.agent)} ${esc(s.source)}</h2>
    <svg viewBox="0 0 ${W} ${H}" role="img" aria-label="Records per ${d.bucket_seconds / 60} minutes of ${esc(s.source)}">${body}
    <text x="40" y="${H - 8}">${time(t0)}</text><text x="${W - 200}" y="${H - 8}">${time(t1)}</text><text x="2" y="20">${max}</text></svg>
    <p>Line: records per ${d.bucket_seconds / 60} min. Blue band: from the baseline down to ${d.drop_ratio * 100}% of it (below: volume_drop). ${shaded ? 'Shaded: ' + shaded : 'No volume alert in this range.'}</p>`;
}

function alerts() {
  main.innerHTML = `<h1>Alerts</h1><div class="controls"><label>State <select id="al-state"><option value="">all</option>
    <option>firing</option><option>resolved</option></select></label><label>Filter <input id="al-q"></label></div>
    <table><thead><tr><th>State</th><th>Alert</th><th>Subject</th><th>Summary</th><th class="wide">Started</th><th class="wide">Resolved</th><th class="wide">Evidence</th></tr></thead><tbody id="al"></tbody></table>`;
  const st = document.getElementById('al-state'), q = document.getElementById('al-q');
  st.addEventListener('change', load); q.addEventListener('input', load);
  function subject(s) {
    const parts = s.split('/');
    return /^[0-9a-f]{16,}$/.test(parts[1] || '') ? streamLink(parts[0], parts[1]) : `<a href="#/sources">${esc(s)}</a>`;
  }
  async function load() {
    try {
      const p = new URLSearchParams();
      if (st.value) p.set('state', st.value);
      if (q.value) p.set('q', q.value);
      const d = await api('/api/alerts?' + p);
      document.getElementById('al').innerHTML = d.alerts.map((a) =>
        `<tr><td>${state(a.state === 'firing' ? (a.severity === 'critical' ? 'red' : 'amber') : 'green')} ${a.state}</td>
         <td>${esc(a.severity)} <b>${esc(a.name)}</b></td><td>${subject(a.subject)}</td><td>${esc(a.summary)}</td>
         <td class="wide">${time(a.started_ns)}</td><td class="wide">${a.resolved_ns ? time(a.resolved_ns) : '—'}</td>
         <td class="wide">${Object.entries(a.evidence).map(([k, v]) => esc(k) + ': ' + esc(v)).join('<br>')}</td></tr>`).join('')
        || '<tr><td colspan="7">No alert.</td></tr>';
      stamp();
    } catch (e) { fail(e); clearInterval(timer); }
  }
  poll(load);
}

function outputs() {
  main.innerHTML = '<h1>Outputs</h1><div id="out"></div>';
  async function load() {
    try {
      const d = await api('/api/outputs');
      document.getElementById('out').innerHTML = d.outputs.length ? d.outputs.map((o) =>
        `<h2>${esc(o.name)} (${esc(o.type)}${o.confirmed ? '' : ': sent, unconfirmed — the protocol has no acknowledgement'})</h2>
         <table><thead><tr><th>Stream</th><th class="n">Should have</th><th class="n">Confirmed</th><th class="n">Waiting</th><th class="n">Refused</th><th>Note</th></tr></thead><tbody>
         ${o.streams.map((s) => `<tr><td>${streamLink(s.agent, s.epoch)}</td><td class="n">${s.signed}</td><td class="n">${s.confirmed}</td>
           <td class="n">${s.waiting}</td><td class="n">${s.refused}</td><td>${s.selected ? '' : 'not selected'} ${esc(s.problem || '')}</td></tr>`).join('')}</tbody></table>`).join('')
        : '<p>Outputs: not configured (no [[output]] has run on this collector).</p>';
      stamp();
    } catch (e) { fail(e); clearInterval(timer); }
  }
  poll(load);
}

function search() {
  clearInterval(timer);
  main.innerHTML = `<h1>Search</h1><form id="sq" class="controls">
    <label>Agent <input name="agent"></label><label>Source <input name="source"></label>
    <label>From <input name="from" placeholder="-1h or RFC 3339"></label><label>To <input name="to"></label>
    <label>Severity at least <input name="severity" size="7"></label><label>Text (ERE) <input name="grep"></label>
    <button type="submit">Search</button></form><div id="sr"></div>`;
  let offset = 0;
  const form = document.getElementById('sq');
  async function run() {
    try {
      const p = new URLSearchParams();
      for (const [k, v] of new FormData(form)) if (v) p.set(k, v);
      p.set('offset', offset); p.set('limit', 50);
      const d = await api('/api/search?' + p);
      document.getElementById('sr').innerHTML = `<p>${d.count} result(s) from ${d.offset + 1}; ${d.scanned} record(s) read</p>
        <table><thead><tr><th>Stream#seq</th><th>Record</th><th>Proof</th></tr></thead><tbody>${d.results.map((r) =>
          `<tr><td>${streamLink(r.agent, r.epoch)}#${r.seq}</td><td><pre>${esc(JSON.stringify(r.record))}</pre></td>
           <td><a href="/api/proof/inclusion?agent=${encodeURIComponent(r.agent)}&epoch=${encodeURIComponent(r.epoch)}&seq=${r.seq}">inclusion proof</a></td></tr>`).join('')}</tbody></table>
        <div class="controls">${offset ? '<button id="sr-prev">Previous page</button>' : ''}${d.more ? '<button id="sr-next">Next page</button>' : ''}</div>`;
      const prev = document.getElementById('sr-prev'), next = document.getElementById('sr-next');
      if (prev) prev.addEventListener('click', () => { offset = Math.max(0, offset - 50); run(); });
      if (next) next.addEventListener('click', () => { offset += 50; run(); });
    } catch (e) { document.getElementById('sr').innerHTML = `<p class="error" role="alert">${esc(e.message)}</p>`; }
  }
  form.addEventListener('submit', (e) => { e.preventDefault(); offset = 0; run(); });
}

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  clearInterval(timer);
  if (parts[0] === 'stream' && parts[1]) streamPage(parts[1], parts[2] || '');
  else if (parts[0] === 'sources') sources();
  else if (parts[0] === 'alerts') alerts();
  else if (parts[0] === 'outputs') outputs();
  else if (parts[0] === 'search') search();
  else overview();
}
window.addEventListener('hashchange', route);
route();

// Tidepool's web console. Plain JavaScript, no dependencies, served from
// the gateway binary. Every request goes to the Manta API of this origin
// with the signed-in account's token in an Authorization header; the token
// lives in sessionStorage (this tab only) and never in a URL. Data is
// rendered with textContent only.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const S = {
    login: null,
    token: null,
    operator: false,
    dir: null,
    view: null,
    watch: null, // AbortController of the job event stream
    clusterTimer: null,
  };

  // ---------------------------------------------------------------- helpers

  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === 'text') e.textContent = v;
      else if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c instanceof Node ? c : String(c));
    return e;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function flash(msg) {
    const f = $('flash');
    f.textContent = msg || '';
    f.hidden = !msg;
  }

  function size(n) {
    if (n === undefined || n === null) return '';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : String(n)) + ' ' + units[i];
  }

  function ago(ms) {
    if (ms < 1000) return 'now';
    if (ms < 60000) return Math.round(ms / 1000) + ' s ago';
    return Math.round(ms / 60000) + ' min ago';
  }

  // A Manta path with each segment percent-encoded.
  function enc(path) {
    return path.split('/').map(encodeURIComponent).join('/');
  }

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(method, path, opts) {
    opts = opts || {};
    const headers = Object.assign({ Authorization: 'Token ' + S.token }, opts.headers || {});
    const r = await fetch(enc(path) + (opts.query || ''), {
      method, headers, body: opts.body, cache: 'no-store', signal: opts.signal,
      credentials: 'omit', redirect: 'error',
    });
    if (!r.ok) {
      let msg = r.status + ' ' + r.statusText;
      try { const j = await r.json(); if (j.message) msg = j.code + ': ' + j.message; } catch (_) { /* not JSON */ }
      if (r.status === 401 || (r.status === 403 && /token/i.test(msg))) signOut('Signed out: ' + msg);
      throw new ApiError(r.status, msg);
    }
    return r;
  }

  function jsonLines(text) {
    return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  }

  // At most `limit` bytes of a response body as text.
  async function headText(resp, limit) {
    const reader = resp.body.getReader();
    const chunks = [];
    let got = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      got += value.length;
      if (got >= limit) { reader.cancel(); break; }
    }
    const all = new Uint8Array(Math.min(got, limit));
    let off = 0;
    for (const c of chunks) {
      const part = c.subarray(0, Math.min(c.length, all.length - off));
      all.set(part, off);
      off += part.length;
      if (off >= all.length) break;
    }
    return { text: new TextDecoder().decode(all), truncated: got > limit };
  }

  // ---------------------------------------------------------------- session

  async function signIn(login, token) {
    S.login = login;
    S.token = token;
    // The account root: readable by the account itself only.
    await api('GET', '/' + login);
    sessionStorage.setItem('tidepool.login', login);
    sessionStorage.setItem('tidepool.token', token);
    try {
      await api('GET', '/console/api/cluster');
      S.operator = true;
    } catch (e) {
      S.operator = false;
    }
    $('who').textContent = login + (S.operator ? ' (operator)' : '');
    $('signin').hidden = true;
    $('nav').hidden = false;
    $('signout').hidden = false;
    $('nav-cluster').hidden = !S.operator;
    S.dir = '/' + login + '/stor';
    show('files');
  }

  function signOut(msg) {
    sessionStorage.removeItem('tidepool.login');
    sessionStorage.removeItem('tidepool.token');
    S.login = S.token = null;
    stopWatch();
    for (const id of ['files', 'jobs', 'cluster']) $(id).hidden = true;
    $('nav').hidden = true;
    $('signout').hidden = true;
    $('who').textContent = '';
    $('signin').hidden = false;
    flash(msg || '');
  }

  function show(view) {
    S.view = view;
    for (const id of ['files', 'jobs', 'cluster']) $(id).hidden = id !== view;
    for (const b of document.querySelectorAll('#nav button')) {
      b.classList.toggle('active', b.dataset.view === view);
    }
    clearInterval(S.clusterTimer);
    flash('');
    if (view === 'files') listDir(S.dir);
    if (view === 'jobs') listJobs();
    if (view === 'cluster') {
      loadCluster();
      S.clusterTimer = setInterval(loadCluster, 5000);
    }
  }

  // ---------------------------------------------------------------- files

  async function listDir(dir) {
    dir = dir.replace(/\/+$/, '') || '/' + S.login;
    $('dir').value = dir;
    const body = $('listing').tBodies[0];
    try {
      const r = await api('GET', dir);
      const ct = r.headers.get('content-type') || '';
      if (!ct.includes('type=directory')) {
        viewObject(dir);
        return;
      }
      S.dir = dir;
      const entries = jsonLines(await r.text());
      clear(body);
      for (const e of entries) {
        const path = dir + '/' + e.name;
        const open = el('button', {
          type: 'button', class: 'link', text: e.name + (e.type === 'directory' ? '/' : ''),
          onclick: () => (e.type === 'directory' ? listDir(path) : viewObject(path)),
        });
        const pick = el('input', { type: 'checkbox', 'data-path': path, 'aria-label': 'select ' + e.name });
        if (e.type === 'directory') pick.disabled = true;
        const del = el('button', {
          type: 'button', class: 'link', text: 'delete',
          onclick: async () => {
            if (!confirm('Delete ' + path + '?')) return;
            try { await api('DELETE', path); listDir(dir); } catch (err) { flash(err.message); }
          },
        });
        body.append(el('tr', { 'data-name': e.name },
          el('td', {}, pick), el('td', {}, open), el('td', { text: e.type }),
          el('td', { text: e.type === 'object' ? size(e.size) : '' }),
          el('td', { text: e.mtime || '' }), el('td', {}, del)));
      }
      if (!entries.length) body.append(el('tr', {}, el('td', { colspan: '6', class: 'hint', text: 'empty' })));
      $('listing').dataset.dir = dir;
    } catch (e) {
      flash(dir + ': ' + e.message);
    }
  }

  async function viewObject(path) {
    $('viewer').hidden = false;
    $('viewer-name').textContent = path;
    $('viewer-text').textContent = 'loading...';
    $('viewer-note').textContent = '';
    try {
      const r = await api('GET', path);
      const { text, truncated } = await headText(r, 256 * 1024);
      $('viewer-text').textContent = text;
      $('viewer-note').textContent = (r.headers.get('content-type') || '') + (truncated ? ' (first 256 KiB shown)' : '');
    } catch (e) {
      $('viewer-text').textContent = '';
      flash(path + ': ' + e.message);
    }
  }

  async function download() {
    const path = $('viewer-name').textContent;
    try {
      const blob = await (await api('GET', path)).blob();
      const url = URL.createObjectURL(blob);
      const a = el('a', { href: url, download: path.split('/').pop() });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (e) {
      flash(path + ': ' + e.message);
    }
  }

  async function upload() {
    // The directory shown when the upload started, whatever is opened meanwhile.
    const dir = S.dir;
    const files = Array.from($('upload-files').files || []);
    const status = $('upload-status');
    if (!files.length) { status.textContent = 'choose files first'; return; }
    let n = 0;
    for (const f of files) {
      status.textContent = 'uploading ' + f.name + ' (' + (n + 1) + '/' + files.length + ')';
      try {
        await api('PUT', dir + '/' + f.name, {
          body: f, headers: { 'Content-Type': f.type || 'application/octet-stream' },
        });
        n++;
      } catch (e) {
        flash(f.name + ': ' + e.message);
        break;
      }
    }
    status.textContent = 'uploaded ' + n + ' of ' + files.length;
    status.dataset.done = String(n);
    $('upload-files').value = '';
    listDir(dir);
  }

  async function mkdir() {
    const name = $('newdir').value.trim();
    if (!name || name.includes('/')) { flash('a directory name without "/"'); return; }
    try {
      await api('PUT', S.dir + '/' + name, { headers: { 'Content-Type': 'application/json; type=directory' } });
      $('newdir').value = '';
      listDir(S.dir);
    } catch (e) {
      flash(name + ': ' + e.message);
    }
  }

  function useSelected() {
    const picked = Array.from(document.querySelectorAll('#listing input[type=checkbox]:checked'))
      .map((c) => c.dataset.path);
    $('job-inputs').value = picked.join('\n');
    show('jobs');
  }

  // ---------------------------------------------------------------- jobs

  // "grep x ^ wc -l ^^ sort" -> phases, as mjob create reads its arguments.
  function parsePipeline(text) {
    const parts = text.trim().split(/\s+(\^\^?)\s+/);
    const phases = [];
    let type = 'map';
    let first = parts.shift();
    if (first.startsWith('^^ ')) { type = 'reduce'; first = first.slice(3); } else if (first.startsWith('^ ')) first = first.slice(2);
    phases.push({ type, exec: first.trim() });
    while (parts.length) {
      const sep = parts.shift();
      const exec = (parts.shift() || '').trim();
      phases.push({ type: sep === '^^' ? 'reduce' : 'map', exec });
    }
    if (phases.some((p) => !p.exec)) throw new Error('a phase has no command');
    return phases;
  }

  async function runJob(ev) {
    ev.preventDefault();
    const err = $('job-error');
    err.hidden = true;
    try {
      const phases = parsePipeline($('job-pipeline').value);
      const inputs = $('job-inputs').value.split('\n').map((l) => l.trim()).filter(Boolean);
      const manifest = { phases };
      if ($('job-name').value.trim()) manifest.name = $('job-name').value.trim();
      const r = await api('POST', '/' + S.login + '/jobs', {
        body: JSON.stringify(manifest), headers: { 'Content-Type': 'application/json' },
      });
      const id = (r.headers.get('location') || '').split('/').pop();
      // Watch first (the first event shows the job before any input), then
      // hand it its inputs.
      await watchJob(id);
      await api('POST', '/' + S.login + '/jobs/' + id + '/live/in', {
        query: '?end=true', body: inputs.join('\n') + '\n', headers: { 'Content-Type': 'text/plain' },
      });
      listJobs();
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
    }
  }

  async function listJobs() {
    const body = $('job-list').tBodies[0];
    try {
      const r = await api('GET', '/' + S.login + '/jobs');
      const dirs = jsonLines(await r.text()).filter((e) => e.type === 'directory');
      dirs.sort((a, b) => (a.mtime < b.mtime ? 1 : -1));
      const recent = dirs.slice(0, 20);
      const rows = await Promise.all(recent.map(async (d) => {
        try {
          return await (await api('GET', '/' + S.login + '/jobs/' + d.name + '/live/status')).json();
        } catch (_) {
          return { id: d.name, state: 'archived', stats: {}, timeCreated: d.mtime };
        }
      }));
      clear(body);
      for (const j of rows) {
        body.append(el('tr', {},
          el('td', {}, el('button', { type: 'button', class: 'link', text: j.id.slice(0, 8), onclick: () => watchJob(j.id) })),
          el('td', { text: j.name || '' }), el('td', { text: j.state }),
          el('td', { text: j.stats.tasks === undefined ? '' : j.stats.tasksDone + '/' + j.stats.tasks }),
          el('td', { text: j.stats.errors === undefined ? '' : String(j.stats.errors) }),
          el('td', { text: j.timeCreated || '' })));
      }
      if (!rows.length) body.append(el('tr', {}, el('td', { colspan: '6', class: 'hint', text: 'no jobs yet' })));
    } catch (e) {
      flash('jobs: ' + e.message);
    }
  }

  function stopWatch() {
    if (S.watch) S.watch.abort();
    S.watch = null;
  }

  // Opens the job's event stream (fetch, so the token goes in a header);
  // resolves once the first event arrived. Reconnects while the job runs.
  function watchJob(id) {
    stopWatch();
    const ctl = new AbortController();
    S.watch = ctl;
    S.jobId = id;
    $('job-view').hidden = false;
    $('job-title').textContent = id;
    $('job-state').textContent = 'connecting';
    clear($('phases'));
    clear($('job-outputs'));
    clear($('job-errors'));
    $('job-output').hidden = true;
    return new Promise((resolve, reject) => {
      let first = true;
      const onEvent = (name, data) => {
        if (name === 'status') renderJob(JSON.parse(data));
        if (name === 'gone') $('job-state').textContent = 'gone';
        if (name === 'problem') $('job-live').textContent = 'metadata unavailable, retrying';
        if (first) { first = false; resolve(); }
      };
      const loop = async () => {
        for (;;) {
          try {
            const r = await api('GET', '/' + S.login + '/jobs/' + id + '/live/events', {
              signal: ctl.signal, headers: { Accept: 'text/event-stream' },
            });
            $('job-live').textContent = 'live';
            const ended = await readEvents(r, onEvent);
            if (ended || ctl.signal.aborted) break;
          } catch (e) {
            if (ctl.signal.aborted) break;
            if (first) { reject(e); return; }
            if (e instanceof ApiError && e.status < 500) { flash(e.message); break; }
          }
          await new Promise((res) => setTimeout(res, 1000));
          if (ctl.signal.aborted) break;
        }
        if (S.watch === ctl) $('job-live').textContent = '';
      };
      loop();
    });
  }

  // Reads Server-Sent Events until the stream ends; true when the job
  // reached its end (done or gone).
  async function readEvents(resp, onEvent) {
    const reader = resp.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    let final = false;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return final;
      buf += dec.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        let name = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue;
          if (line.startsWith('event: ')) name = line.slice(7);
          else if (line.startsWith('data: ')) data.push(line.slice(6));
        }
        if (!data.length) continue;
        const text = data.join('\n');
        if (name === 'gone') final = true;
        if (name === 'status' && JSON.parse(text).state === 'done') final = true;
        onEvent(name, text);
      }
    }
  }

  function phasePercent(job, p, i) {
    if (job.state === 'done') return 100;
    let total = p.tasks;
    if (i === 0 && job.inputDone) total = Math.max(total, job.inputs);
    return total ? Math.floor((100 * (p.done + p.failed)) / total) : 0;
  }

  function renderJob(job) {
    const st = $('job-state');
    st.textContent = job.state + (job.cancelled ? ' (cancelled)' : '');
    st.className = 'state ' + job.state;
    $('job-title').textContent = (job.name ? job.name + ' ' : '') + job.id;
    $('job-stats').textContent = 'inputs ' + job.inputsConsumed + '/' + job.inputs +
      (job.inputDone ? '' : ' (input open)') + ' · tasks ' + job.tasksDone + '/' + job.tasks +
      ' · outputs ' + job.outputs + ' · errors ' + job.errors + ' · retries ' + job.retries +
      (job.partial ? ' · counts partial' : '');
    const box = $('phases');
    job.phases.forEach((p, i) => {
      let row = box.children[i];
      if (!row) {
        row = el('div', { class: 'phase', 'data-phase': String(i) },
          el('div', { class: 'label' }), el('progress', { max: '100', value: '0' }), el('div', { class: 'counts' }));
        box.append(row);
      }
      row.querySelector('.label').textContent = 'Phase ' + i + ' (' + p.type + ')';
      const pct = phasePercent(job, p, i);
      row.querySelector('progress').setAttribute('value', String(pct));
      row.querySelector('progress').textContent = pct + '%';
      row.querySelector('.counts').textContent = pct + '% · ' + (p.done + p.failed) + '/' + p.tasks +
        ' tasks finished · running ' + p.running + ' · queued ' + p.queued + ' · done ' + p.done +
        ' · failed ' + p.failed + ' · errors ' + p.errors;
    });
    if (job.throughput) {
      $('job-throughput').textContent = 'throughput: ' + job.throughput.tasksPerSec.toFixed(2) +
        ' tasks/s · ' + size(Math.round(job.throughput.bytesPerSec)) + '/s of input';
    }
    // A done or already-cancelled job has nothing to cancel: no button.
    $('job-cancel').hidden = job.state === 'done' || job.cancelled;
    if (job.state === 'done') loadResults(job);
  }

  async function loadResults(job) {
    const base = '/' + S.login + '/jobs/' + job.id + '/live/';
    try {
      const outs = (await (await api('GET', base + 'out')).text()).split('\n').filter(Boolean);
      const ul = $('job-outputs');
      clear(ul);
      for (const o of outs) {
        ul.append(el('li', {}, el('button', { type: 'button', class: 'link', text: o, onclick: () => showOutput(o) })));
      }
      if (!outs.length) ul.append(el('li', { class: 'hint', text: 'no outputs' }));
      const errs = jsonLines(await (await api('GET', base + 'err')).text());
      const ue = $('job-errors');
      clear(ue);
      for (const e of errs) {
        const line = 'phase ' + e.phase + ': ' + e.code + ': ' + e.message + (e.input ? ' (input ' + e.input + ')' : '');
        const li = el('li', { class: 'error', text: line });
        if (e.stderr) li.append(' ', el('button', { type: 'button', class: 'link', text: 'stderr', onclick: () => showOutput(e.stderr) }));
        ue.append(li);
      }
      if (!errs.length) ue.append(el('li', { class: 'hint', text: 'no errors' }));
      listJobs();
    } catch (e) {
      flash('results: ' + e.message);
    }
  }

  async function showOutput(path) {
    const pre = $('job-output');
    pre.hidden = false;
    pre.dataset.path = path;
    pre.textContent = 'loading ' + path;
    try {
      const { text, truncated } = await headText(await api('GET', path), 256 * 1024);
      pre.textContent = text + (truncated ? '\n[first 256 KiB shown]' : '');
      pre.dataset.loaded = path;
    } catch (e) {
      pre.textContent = path + ': ' + e.message;
    }
  }

  async function cancelJob() {
    if (!S.jobId || !confirm('Cancel job ' + S.jobId + '?')) return;
    try { await api('POST', '/' + S.login + '/jobs/' + S.jobId + '/live/cancel'); } catch (e) { flash(e.message); }
  }

  // ---------------------------------------------------------------- cluster

  async function loadCluster() {
    try {
      const c = await (await api('GET', '/console/api/cluster')).json();
      const s = c.summary;
      $('cluster-summary').textContent = s.nodesUp + ' of ' + s.nodes + ' nodes up · ' +
        size(s.capacityUsed) + ' used of ' + size(s.capacityTotal) + ' · ' +
        s.liveJobs + (s.liveJobsCapped ? '+' : '') + ' live jobs · ' + s.eventStreams + ' event streams';
      const nb = $('nodes').tBodies[0];
      clear(nb);
      for (const n of c.nodes) {
        const bar = el('progress', { max: String(n.capacityTotal || 1), value: String(n.capacityUsed) });
        nb.append(el('tr', { 'data-node': n.id },
          el('td', { text: n.id }), el('td', { class: 'cond-' + n.condition, text: n.condition }),
          el('td', { text: n.az }), el('td', {}, bar, ' ' + size(n.capacityUsed)),
          el('td', { text: size(n.capacityTotal) }),
          el('td', { text: n.queuedTasks + (n.queuedTasksCapped ? '+' : '') }),
          el('td', { text: ago(n.heartbeatAgeMs) }), el('td', { text: n.poolHealth || '' })));
      }
      const wb = $('workers').tBodies[0];
      clear(wb);
      for (const w of c.workers) {
        wb.append(el('tr', {},
          el('td', { text: w.scope }), el('td', { text: w.name }),
          el('td', { text: w.state + (w.paused ? ' (paused)' : '') }), el('td', { text: String(w.passes) }),
          el('td', { text: w.progress }), el('td', { class: 'error', text: w.lastError || '' }),
          el('td', { text: ago(w.reportAgeMs) })));
      }
    } catch (e) {
      flash('cluster: ' + e.message);
    }
  }

  // ---------------------------------------------------------------- wiring

  $('signin-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const err = $('signin-error');
    err.hidden = true;
    try {
      await signIn($('login').value.trim(), $('token').value.trim());
      $('token').value = '';
    } catch (e) {
      S.token = null;
      err.textContent = 'Sign-in failed: ' + e.message;
      err.hidden = false;
    }
  });
  $('signout').addEventListener('click', () => signOut());
  for (const b of document.querySelectorAll('#nav button')) b.addEventListener('click', () => show(b.dataset.view));
  $('dir-go').addEventListener('click', () => listDir($('dir').value.trim()));
  $('dir').addEventListener('keydown', (e) => { if (e.key === 'Enter') listDir($('dir').value.trim()); });
  $('dir-refresh').addEventListener('click', () => listDir(S.dir));
  $('dir-up').addEventListener('click', () => {
    const up = S.dir.split('/').slice(0, -1).join('/');
    if (up.split('/').length >= 2 && up !== '') listDir(up);
  });
  $('upload').addEventListener('click', upload);
  $('mkdir').addEventListener('click', mkdir);
  $('viewer-download').addEventListener('click', download);
  $('use-inputs').addEventListener('click', useSelected);
  $('job-form').addEventListener('submit', runJob);
  $('jobs-refresh').addEventListener('click', listJobs);
  $('job-cancel').addEventListener('click', cancelJob);
  $('cluster-refresh').addEventListener('click', loadCluster);

  const login = sessionStorage.getItem('tidepool.login');
  const token = sessionStorage.getItem('tidepool.token');
  if (login && token) signIn(login, token).catch((e) => signOut('Signed out: ' + e.message));
})();

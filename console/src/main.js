// twinhub console: Preact + htm, hash routes (#/overview, #/devices, #/devices/{id}, #/query).
import { h, render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';
import { call, deviceConnectionString, parseMetrics, session, signIn, signOut } from './api.js';
import { Chart, pushSample } from './charts.js';
import { TwinEditor } from './twin.js';
import { Copy, ErrorLine, usePoll } from './ui.js';
import './style.css';

const html = htm.bind(h);

function useRoute() {
  const [route, setRoute] = useState(location.hash.slice(1) || '/overview');
  useEffect(() => {
    const f = () => setRoute(location.hash.slice(1) || '/overview');
    addEventListener('hashchange', f);
    return () => removeEventListener('hashchange', f);
  }, []);
  return route;
}

function SignIn({ onDone }) {
  const [cs, setCs] = useState('');
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      signIn(cs);
      // Any of these proves the key: registry reads (RegistryRead) or service statistics (ServiceConnect).
      const r = await Promise.allSettled([call('GET', '/statistics/devices'), call('GET', '/statistics/service')]);
      if (r.every((x) => x.status === 'rejected')) throw r[0].reason;
      onDone();
    } catch (err) {
      signOut();
      setError(err);
    }
  };
  return html`<main class="signin"><form onSubmit=${submit}>
    <h1>twinhub console</h1>
    <label for="cs">Shared access policy connection string</label>
    <textarea id="cs" rows="3" placeholder="HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=..."
      value=${cs} onInput=${(e) => setCs(e.target.value)}></textarea>
    <p class="hint">Kept in this tab's session storage only; requests are signed in the browser. The policy's permissions apply.</p>
    <button type="submit">Sign in</button>
    <${ErrorLine} error=${error} />
  </form></main>`;
}

function Overview() {
  const [stats, setStats] = useState({});
  const [series, setSeries] = useState({ msgs: [], twins: [], conn: [] });
  const [error, setError] = useState(null);
  const prev = useRef(null);
  usePoll(async () => {
    try {
      const [dev, svc] = await Promise.allSettled([call('GET', '/statistics/devices'), call('GET', '/statistics/service')]);
      setStats({ ...(dev.value ? dev.value.body : {}), ...(svc.value ? svc.value.body : {}) });
      const m = parseMetrics((await call('GET', '/metrics')).body);
      const now = { t: Date.now(), msgs: m.get('twinhub_d2c_telemetry_ingress_success_total') || 0,
        twins: (m.get('twinhub_d2c_twin_update_success_total') || 0) + (m.get('twinhub_c2d_twin_update_success_total') || 0) };
      const p = prev.current;
      prev.current = now;
      if (p) {
        const dt = Math.max((now.t - p.t) / 1000, 0.001);
        setSeries((s) => ({ msgs: pushSample(s.msgs, (now.msgs - p.msgs) / dt), twins: pushSample(s.twins, (now.twins - p.twins) / dt),
          conn: pushSample(s.conn, m.get('twinhub_connectedDeviceCount') || 0) }));
      }
      setError(null);
    } catch (e) { setError(e); }
  }, 2000);
  const card = (label, v) => html`<div class="card"><span>${label}</span><b data-stat=${label}>${v ?? '–'}</b></div>`;
  return html`<section><h2>Overview</h2><${ErrorLine} error=${error} />
    <div class="cards">${card('Devices', stats.totalDeviceCount)}${card('Enabled', stats.enabledDeviceCount)}
      ${card('Disabled', stats.disabledDeviceCount)}${card('Connected', stats.connectedDeviceCount)}</div>
    <div class="charts"><${Chart} title="Telemetry messages" points=${series.msgs} />
      <${Chart} title="Twin writes" points=${series.twins} />
      <${Chart} title="Connected devices" points=${series.conn} unit="" /></div>
    <p class="hint">Rates from /metrics every 2 s over the last 5 minutes.</p></section>`;
}

function Devices() {
  const [list, setList] = useState([]);
  const [q, setQ] = useState('');
  const [newId, setNewId] = useState('');
  const [error, setError] = useState(null);
  const load = async () => {
    try { setList((await call('GET', '/devices?top=1000')).body); setError(null); } catch (e) { setError(e); }
  };
  usePoll(load, 3000);
  const create = async (e) => {
    e.preventDefault();
    try {
      await call('PUT', `/devices/${encodeURIComponent(newId)}`, { deviceId: newId });
      location.hash = `#/devices/${encodeURIComponent(newId)}`;
    } catch (err) { setError(err); }
  };
  const shown = list.filter((d) => d.deviceId.toLowerCase().includes(q.toLowerCase()))
    .sort((a, b) => a.deviceId.localeCompare(b.deviceId));
  return html`<section><h2>Devices</h2>
    <div class="row"><input type="search" placeholder="Search device id" value=${q} onInput=${(e) => setQ(e.target.value)} aria-label="Search" />
    <form class="inline" onSubmit=${create}><input placeholder="New device id" value=${newId} onInput=${(e) => setNewId(e.target.value)} aria-label="New device id" />
      <button type="submit">Create device</button></form></div>
    <${ErrorLine} error=${error} />
    <table class="grid"><thead><tr><th>Device</th><th>Status</th><th>Connection</th><th>Last activity</th><th>Auth</th><th>C2D queued</th></tr></thead>
    <tbody>${shown.map((d) => html`<tr key=${d.deviceId}>
      <td><a href="#/devices/${encodeURIComponent(d.deviceId)}">${d.deviceId}</a></td>
      <td><span class="pill ${d.status}">${d.status}</span></td>
      <td><span class="pill ${d.connectionState}" data-connection=${d.deviceId}>${d.connectionState}</span></td>
      <td>${d.lastActivityTime && !d.lastActivityTime.startsWith('0001') ? new Date(d.lastActivityTime).toLocaleString() : '–'}</td>
      <td>${d.authentication && d.authentication.type}</td><td>${d.cloudToDeviceMessageCount}</td></tr>`)}</tbody></table>
    <p class="hint">${shown.length} of ${list.length} devices</p></section>`;
}

function Keys({ host, identity }) {
  const k = identity.authentication && identity.authentication.symmetricKey;
  if (!k || !k.primaryKey) return html`<p class="hint">Authentication: ${identity.authentication && identity.authentication.type}</p>`;
  const row = (label, v) => html`<tr><th>${label}</th><td><code>${v}</code></td><td><${Copy} text=${v} /></td></tr>`;
  return html`<table class="keys">
    ${row('Primary key', k.primaryKey)}${row('Secondary key', k.secondaryKey)}
    ${row('Primary connection string', deviceConnectionString(host, identity.deviceId, k.primaryKey, identity.moduleId))}
    ${row('Secondary connection string', deviceConnectionString(host, identity.deviceId, k.secondaryKey, identity.moduleId))}</table>`;
}

function Modules({ host, id }) {
  const [mods, setMods] = useState([]);
  const [mid, setMid] = useState('');
  const [error, setError] = useState(null);
  const [open, setOpen] = useState(null);
  const load = async () => { try { setMods((await call('GET', `/devices/${encodeURIComponent(id)}/modules`)).body); } catch (e) { setError(e); } };
  usePoll(load, 5000, [id]);
  const create = async (e) => {
    e.preventDefault();
    try { await call('PUT', `/devices/${encodeURIComponent(id)}/modules/${encodeURIComponent(mid)}`, { deviceId: id, moduleId: mid }); setMid(''); load(); } catch (err) { setError(err); }
  };
  const del = async (m) => {
    if (!confirm(`Delete module ${m.moduleId}?`)) return;
    try { await call('DELETE', `/devices/${encodeURIComponent(id)}/modules/${encodeURIComponent(m.moduleId)}`, undefined, { 'If-Match': '*' }); load(); } catch (err) { setError(err); }
  };
  return html`<div><form class="inline" onSubmit=${create}><input placeholder="New module id" value=${mid} onInput=${(e) => setMid(e.target.value)} aria-label="New module id" />
    <button type="submit">Add module</button></form><${ErrorLine} error=${error} />
    <table class="grid"><thead><tr><th>Module</th><th>Connection</th><th></th></tr></thead><tbody>
    ${mods.map((m) => html`<tr key=${m.moduleId}><td><a href="javascript:void 0" onClick=${() => setOpen(open === m.moduleId ? null : m.moduleId)}>${m.moduleId}</a>
      ${open === m.moduleId ? html`<${Keys} host=${host} identity=${m} />` : null}</td>
      <td><span class="pill ${m.connectionState}">${m.connectionState}</span></td>
      <td><button class="small danger" onClick=${() => del(m)}>Delete</button></td></tr>`)}</tbody></table></div>`;
}

function Methods({ id }) {
  const [name, setName] = useState('');
  const [payload, setPayload] = useState('{}');
  const [timeout, setTimeoutS] = useState(30);
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const invoke = async (e) => {
    e.preventDefault();
    setError(null); setResult(null);
    try {
      const p = payload.trim() ? JSON.parse(payload) : null;
      const r = await call('POST', `/twins/${encodeURIComponent(id)}/methods`, { methodName: name, payload: p, responseTimeoutInSeconds: Number(timeout), connectTimeoutInSeconds: 10 });
      setResult(r.body);
    } catch (err) { setError(err); }
  };
  return html`<form onSubmit=${invoke} class="stack">
    <label>Method name <input name="methodName" value=${name} onInput=${(e) => setName(e.target.value)} required /></label>
    <label>Payload (JSON) <textarea name="payload" rows="4" value=${payload} onInput=${(e) => setPayload(e.target.value)}></textarea></label>
    <label>Response timeout (s) <input type="number" min="5" max="300" value=${timeout} onInput=${(e) => setTimeoutS(e.target.value)} /></label>
    <button type="submit">Invoke method</button><${ErrorLine} error=${error} />
    ${result ? html`<div class="result" data-method-result><b>Status ${result.status}</b><pre>${JSON.stringify(result.payload, null, 2)}</pre></div>` : null}
  </form>`;
}

function C2d({ id }) {
  const [body, setBody] = useState('');
  const [props, setProps] = useState('');
  const [sent, setSent] = useState(null);
  const [error, setError] = useState(null);
  const send = async (e) => {
    e.preventDefault();
    setError(null);
    const headers = { 'Content-Type': 'text/plain' };
    for (const line of props.split('\n')) {
      const i = line.indexOf('=');
      if (i > 0) headers[`iothub-app-${line.slice(0, i).trim()}`] = line.slice(i + 1).trim();
    }
    try { const r = await call('POST', `/console/api/devices/${encodeURIComponent(id)}/messages`, body, headers); setSent(r.body.sequenceNumber); } catch (err) { setError(err); }
  };
  return html`<form onSubmit=${send} class="stack">
    <label>Message body <textarea name="c2dBody" rows="3" value=${body} onInput=${(e) => setBody(e.target.value)}></textarea></label>
    <label>Properties (name=value per line) <textarea rows="2" value=${props} onInput=${(e) => setProps(e.target.value)}></textarea></label>
    <button type="submit">Send message</button><${ErrorLine} error=${error} />
    ${sent !== null ? html`<p class="ok" data-c2d-sent>Queued as message ${sent}.</p>` : null}</form>`;
}

function Telemetry({ id }) {
  const [msgs, setMsgs] = useState([]);
  const [rate, setRate] = useState([]);
  const [error, setError] = useState(null);
  const next = useRef(null);
  useEffect(() => { next.current = null; setMsgs([]); setRate([]); }, [id]);
  usePoll(async () => {
    try {
      const from = next.current === null ? '' : `?from=${next.current}`;
      const r = (await call('GET', `/console/api/devices/${encodeURIComponent(id)}/events${from}`)).body;
      const fresh = next.current === null ? [] : r.events;
      next.current = r.next;
      if (fresh.length) setMsgs((m) => [...fresh.reverse(), ...m].slice(0, 200));
      setRate((s) => pushSample(s, fresh.length, 60));
      setError(null);
    } catch (e) { setError(e); }
  }, 1000, [id]);
  return html`<div><${Chart} title="Messages/s (last minute)" points=${rate} /><${ErrorLine} error=${error} />
    <p class="hint">Live from the built-in endpoint, from when this view opened.</p>
    <ul class="events">${msgs.map((m) => html`<li key=${m.sequenceNumber} data-event>
      <span class="when">${new Date(m.enqueuedTime).toLocaleTimeString()} #${m.sequenceNumber}${m.moduleId ? ` ${m.moduleId}` : ''}</span>
      <code>${m.body}</code>${Object.keys(m.properties).length ? html` <small>${JSON.stringify(m.properties)}</small>` : null}</li>`)}</ul></div>`;
}

function Device({ id }) {
  const s = session();
  const [dev, setDev] = useState(null);
  const [tab, setTab] = useState('twin');
  const [error, setError] = useState(null);
  const load = async () => { try { setDev((await call('GET', `/devices/${encodeURIComponent(id)}`)).body); setError(null); } catch (e) { setError(e); } };
  usePoll(load, 3000, [id]);
  const toggle = async () => {
    try {
      const body = { ...dev, status: dev.status === 'enabled' ? 'disabled' : 'enabled' };
      setDev((await call('PUT', `/devices/${encodeURIComponent(id)}`, body, { 'If-Match': `"${dev.etag}"` })).body);
    } catch (e) { setError(e); }
  };
  const del = async () => {
    if (!confirm(`Delete device ${id}? Its twin, modules and queued messages go with it.`)) return;
    try { await call('DELETE', `/devices/${encodeURIComponent(id)}`, undefined, { 'If-Match': '*' }); location.hash = '#/devices'; } catch (e) { setError(e); }
  };
  if (!dev) return html`<section><h2>${id}</h2><${ErrorLine} error=${error} /></section>`;
  const tabs = [['twin', 'Twin'], ['methods', 'Direct method'], ['c2d', 'Cloud-to-device'], ['telemetry', 'Telemetry'], ['modules', 'Modules'], ['keys', 'Keys']];
  return html`<section><h2>${id} <span class="pill ${dev.status}">${dev.status}</span> <span class="pill ${dev.connectionState}" data-device-connection>${dev.connectionState}</span></h2>
    <div class="row"><button onClick=${toggle}>${dev.status === 'enabled' ? 'Disable' : 'Enable'}</button>
      <button class="danger" onClick=${del}>Delete device</button></div><${ErrorLine} error=${error} />
    <nav class="tabs">${tabs.map(([k, label]) => html`<button class=${tab === k ? 'active' : ''} onClick=${() => setTab(k)}>${label}</button>`)}</nav>
    ${tab === 'twin' ? html`<${TwinEditor} id=${id} />` : null}
    ${tab === 'methods' ? html`<${Methods} id=${id} />` : null}
    ${tab === 'c2d' ? html`<${C2d} id=${id} />` : null}
    ${tab === 'telemetry' ? html`<${Telemetry} id=${id} />` : null}
    ${tab === 'modules' ? html`<${Modules} host=${s.host} id=${id} />` : null}
    ${tab === 'keys' ? html`<${Keys} host=${s.host} identity=${dev} />` : null}</section>`;
}

function Query() {
  const [text, setText] = useState('SELECT * FROM devices');
  const [rows, setRows] = useState(null);
  const [error, setError] = useState(null);
  const run = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      let out = [];
      let cont;
      do {
        const r = await call('POST', '/devices/query', { query: text }, cont ? { 'x-ms-continuation': cont } : {});
        out = out.concat(r.body);
        cont = r.headers.get('x-ms-continuation');
      } while (cont && out.length < 5000);
      setRows(out);
    } catch (err) { setError(err); }
  };
  const cols = rows ? [...new Set(rows.flatMap((r) => (typeof r === 'object' && r ? Object.keys(r) : ['value'])))] : [];
  const cell = (v) => (v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  return html`<section><h2>Query</h2><form onSubmit=${run} class="stack">
    <textarea name="query" rows="3" value=${text} onInput=${(e) => setText(e.target.value)} aria-label="Query"></textarea>
    <button type="submit">Run query</button></form><${ErrorLine} error=${error} />
    ${rows ? html`<p class="hint">${rows.length} rows</p><div class="scroll"><table class="grid" data-query-results><thead><tr>${cols.map((c) => html`<th>${c}</th>`)}</tr></thead>
      <tbody>${rows.map((r) => html`<tr>${cols.map((c) => html`<td>${cell(typeof r === 'object' && r ? r[c] : r)}</td>`)}</tr>`)}</tbody></table></div>` : null}</section>`;
}

function App() {
  const route = useRoute();
  const [signedIn, setSignedIn] = useState(!!session());
  if (!signedIn) return html`<${SignIn} onDone=${() => setSignedIn(true)} />`;
  const s = session();
  let page;
  const m = /^\/devices\/(.+)$/.exec(route);
  if (m) page = html`<${Device} id=${decodeURIComponent(m[1])} />`;
  else if (route === '/devices') page = html`<${Devices} />`;
  else if (route === '/query') page = html`<${Query} />`;
  else page = html`<${Overview} />`;
  const link = (href, label) => html`<a href=${href} class=${route === href.slice(1) || (href === '#/devices' && m) ? 'active' : ''}>${label}</a>`;
  return html`<div class="shell"><header><b>twinhub</b> <span class="hint">${s.host} · ${s.keyName}</span>
    <nav>${link('#/overview', 'Overview')}${link('#/devices', 'Devices')}${link('#/query', 'Query')}</nav>
    <button class="small" onClick=${() => { signOut(); setSignedIn(false); }}>Sign out</button></header>
    <main>${page}</main></div>`;
}

render(html`<${App} />`, document.getElementById('app'));

// The hub's REST API from the browser: SAS tokens signed here with WebCrypto from the policy's key,
// which stays in sessionStorage (this tab only, gone when it closes). The hub enforces the policy's
// permissions; a registryRead policy gets 401 on writes and the console shows it.
const API = 'api-version=2021-04-12';
const KEY = 'twinhub.connectionString';

export function parseConnectionString(cs) {
  const parts = {};
  for (const p of String(cs).trim().split(';')) {
    const i = p.indexOf('=');
    if (i > 0) parts[p.slice(0, i)] = p.slice(i + 1);
  }
  if (!parts.HostName || !parts.SharedAccessKeyName || !parts.SharedAccessKey) {
    throw new Error('A policy connection string has HostName, SharedAccessKeyName and SharedAccessKey.');
  }
  return { host: parts.HostName, keyName: parts.SharedAccessKeyName, key: parts.SharedAccessKey };
}

export function session() {
  const cs = sessionStorage.getItem(KEY);
  if (!cs) return null;
  try { return parseConnectionString(cs); } catch { return null; }
}
export function signIn(cs) { parseConnectionString(cs); sessionStorage.setItem(KEY, cs.trim()); token = null; }
export function signOut() { sessionStorage.removeItem(KEY); token = null; }

const b64 = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)));
const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

export async function sasToken(host, keyName, key, ttlSeconds = 3600) {
  const sr = encodeURIComponent(host);
  const se = Math.floor(Date.now() / 1000) + ttlSeconds;
  const k = await crypto.subtle.importKey('raw', unb64(key), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const sig = await crypto.subtle.sign('HMAC', k, new TextEncoder().encode(`${sr}\n${se}`));
  return { value: `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(b64(sig))}&se=${se}&skn=${encodeURIComponent(keyName)}`, se };
}

let token = null;
async function auth() {
  const s = session();
  if (!s) throw new Error('Not signed in.');
  if (!token || token.se - Date.now() / 1000 < 300) token = await sasToken(s.host, s.keyName, s.key);
  return token.value;
}

export class ApiError extends Error {
  constructor(status, message, code) { super(message); this.status = status; this.code = code; }
}

// fetch with the SAS token; JSON in and out. Returns {status, body, headers}.
export async function call(method, path, body, headers = {}) {
  const url = path.startsWith('/console/api/') || path === '/metrics' ? path : `${path}${path.includes('?') ? '&' : '?'}${API}`;
  const init = { method, headers: { Authorization: await auth(), ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    if (!init.headers['Content-Type']) init.headers['Content-Type'] = 'application/json';
  }
  const res = await fetch(url, init);
  const text = await res.text();
  let parsed = text;
  try { parsed = text ? JSON.parse(text) : null; } catch { /* text */ }
  if (!res.ok) {
    let msg = typeof parsed === 'object' && parsed && parsed.Message ? parsed.Message : text || res.statusText;
    const m = /^ErrorCode:([^;]+);(.*)$/s.exec(msg);
    if (m) msg = `${m[1]}: ${m[2]}`;
    throw new ApiError(res.status, `${res.status} ${msg}`, res.headers.get('iothub-errorcode'));
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

export const deviceConnectionString = (host, id, key, moduleId) =>
  `HostName=${host};DeviceId=${id}${moduleId ? `;ModuleId=${moduleId}` : ''};SharedAccessKey=${key}`;

// Prometheus text -> Map(name -> value).
export function parseMetrics(text) {
  const out = new Map();
  for (const line of String(text).split('\n')) {
    if (!line || line[0] === '#') continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

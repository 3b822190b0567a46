// The twin editor: tags and desired properties editable (PUT with If-Match: a conflict is shown,
// never overwritten), reported properties read-only and refreshed live, $metadata timestamps.
import { h } from 'preact';
import { useState } from 'preact/hooks';
import htm from 'htm';
import { call } from './api.js';
import { ErrorLine, usePoll } from './ui.js';

const html = htm.bind(h);

const strip = (o) => Object.fromEntries(Object.entries(o || {}).filter(([k]) => !k.startsWith('$')));
const pretty = (o) => JSON.stringify(o, null, 2);

// [path, $lastUpdated] of every leaf the metadata describes.
function timestamps(meta, prefix = '') {
  const out = [];
  for (const [k, v] of Object.entries(meta || {})) {
    if (k.startsWith('$') || !v || typeof v !== 'object') continue;
    const path = prefix ? `${prefix}.${k}` : k;
    if (v.$lastUpdated) out.push([path, v.$lastUpdated, v.$lastUpdatedVersion]);
    out.push(...timestamps(v, path));
  }
  return out;
}

export function TwinEditor({ id }) {
  const [twin, setTwin] = useState(null);
  const [tags, setTags] = useState('');
  const [desired, setDesired] = useState('');
  const [dirty, setDirty] = useState(false);
  const [error, setError] = useState(null);
  const [conflict, setConflict] = useState(null);
  const [saved, setSaved] = useState(null);
  const [base, setBase] = useState(null);  // the etag the text being edited was loaded at

  const apply = (t, force) => {
    setTwin(t);
    if (force || !dirty) {
      setBase(t.etag);
      setTags(pretty(t.tags || {}));
      setDesired(pretty(strip(t.properties.desired)));
    }
  };
  usePoll(async () => {
    try { apply((await call('GET', `/twins/${encodeURIComponent(id)}`)).body, false); setError(null); } catch (e) { setError(e); }
  }, 1000, [id, dirty]);

  const save = async (e) => {
    e.preventDefault();
    setError(null); setConflict(null); setSaved(null);
    let body;
    try {
      body = { tags: JSON.parse(tags || '{}'), properties: { desired: JSON.parse(desired || '{}') } };
    } catch (err) { setError(new Error(`Not valid JSON: ${err.message}`)); return; }
    try {
      const r = await call('PUT', `/twins/${encodeURIComponent(id)}`, body, { 'If-Match': `"${base}"` });
      setDirty(false);
      apply(r.body, true);
      setSaved(r.body.properties.desired.$version);
    } catch (err) {
      if (err.status === 412) {
        setConflict(`The twin changed since you loaded it (you edited etag ${base}, it is now ${twin.etag}). Your edits are kept here; reload to see the current twin, then apply them again.`);
      } else setError(err);
    }
  };
  const reload = async () => {
    setConflict(null);
    setDirty(false);
    apply((await call('GET', `/twins/${encodeURIComponent(id)}`)).body, true);
  };
  if (!twin) return html`<${ErrorLine} error=${error} />`;
  const rep = twin.properties.reported;
  return html`<div class="twin">
    <p class="hint">etag <code data-twin-etag>${twin.etag}</code> · version ${twin.version} · desired $version ${twin.properties.desired.$version} · reported $version <span data-reported-version>${rep.$version}</span></p>
    <form onSubmit=${save} class="cols">
      <label>Tags<textarea name="tags" rows="10" value=${tags} onInput=${(e) => { setTags(e.target.value); setDirty(true); }}></textarea></label>
      <label>Desired properties<textarea name="desired" rows="10" value=${desired} onInput=${(e) => { setDesired(e.target.value); setDirty(true); }}></textarea></label>
      <label>Reported properties (read-only, live)<pre data-reported>${pretty(strip(rep))}</pre></label>
      <div class="row"><button type="submit">Save twin</button> <button type="button" onClick=${reload}>Reload</button>
        ${dirty ? html`<span class="hint">unsaved changes</span>` : null}
        ${saved !== null ? html`<span class="ok" data-twin-saved>Saved: desired $version ${saved}</span>` : null}</div>
    </form>
    ${conflict ? html`<p class="conflict" role="alert" data-twin-conflict>${conflict}</p>` : null}
    <${ErrorLine} error=${error} />
    <h3>$metadata</h3>
    <table class="grid small"><thead><tr><th>Property</th><th>Last updated</th><th>Version</th></tr></thead><tbody>
      ${[...timestamps(twin.properties.desired.$metadata).map((r) => ['desired.' + r[0], r[1], r[2]]),
         ...timestamps(rep.$metadata).map((r) => ['reported.' + r[0], r[1], r[2]])].map((r) => html`<tr><td>${r[0]}</td><td>${r[1]}</td><td>${r[2] ?? ''}</td></tr>`)}
    </tbody></table></div>`;
}

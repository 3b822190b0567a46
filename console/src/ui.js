// Small shared pieces: polling, error lines, copy buttons.
import { h } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';

const html = htm.bind(h);

// Runs fn now and every `ms` while mounted (and while `on`).
export function usePoll(fn, ms, deps = [], on = true) {
  const saved = useRef(fn);
  saved.current = fn;
  useEffect(() => {
    if (!on) return undefined;
    let stop = false;
    let timer;
    const tick = async () => {
      try { await saved.current(); } catch { /* shown by fn */ }
      if (!stop) timer = setTimeout(tick, ms);
    };
    tick();
    return () => { stop = true; clearTimeout(timer); };
  }, [...deps, on]);
}

export function ErrorLine({ error }) {
  return error ? html`<p class="error" role="alert">${String(error.message || error)}</p>` : null;
}

export function Copy({ text, label = 'Copy' }) {
  const [done, setDone] = useState(false);
  const copy = async () => {
    try { await navigator.clipboard.writeText(text); } catch {
      const t = document.createElement('textarea');
      t.value = text; document.body.appendChild(t); t.select(); document.execCommand('copy'); t.remove();
    }
    setDone(true); setTimeout(() => setDone(false), 1200);
  };
  return html`<button class="small" onClick=${copy}>${done ? 'Copied' : label}</button>`;
}


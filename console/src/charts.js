// A small SVG line chart and a rolling time series (no chart library: a few points a second).
import { h } from 'preact';
import htm from 'htm';

const html = htm.bind(h);

export function Chart({ title, points, unit = '/s', width = 360, height = 110 }) {
  const max = Math.max(1, ...points.map((p) => p.v));
  const n = Math.max(points.length - 1, 1);
  const xy = points.map((p, i) => `${(i / n) * (width - 8) + 4},${height - 18 - (p.v / max) * (height - 30)}`).join(' ');
  const last = points.length ? points[points.length - 1].v : 0;
  return html`<figure class="chart" data-chart=${title}>
    <figcaption>${title} <b>${Number.isInteger(last) ? last : last.toFixed(1)}${unit}</b></figcaption>
    <svg width=${width} height=${height} viewBox="0 0 ${width} ${height}" role="img" aria-label=${title}>
      <line x1="4" y1=${height - 18} x2=${width - 4} y2=${height - 18} class="axis" />
      <text x="4" y="10" class="tick">${Number.isInteger(max) ? max : max.toFixed(1)}</text>
      <polyline points=${xy} class="line" />
    </svg>
  </figure>`;
}

// Keeps `seconds` of {t, v} samples.
export function pushSample(series, v, seconds = 300) {
  const t = Date.now();
  const out = series.filter((p) => t - p.t <= seconds * 1000);
  out.push({ t, v });
  return out;
}

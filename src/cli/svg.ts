// A small dependency-free SVG line chart (for the demo's curves and the bench chart).

export interface Series {
  name: string;
  points: [number, number][];
  color: string;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
  yMin?: number;
  yMax?: number;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const n2 = (v: number) => (Math.round(v * 100) / 100).toString();

function ticks(lo: number, hi: number, count = 5): number[] {
  const span = hi - lo || 1;
  const step = 10 ** Math.floor(Math.log10(span / count));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => span / s <= count) ?? step * 10;
  const out: number[] = [];
  for (let v = Math.ceil(lo / nice) * nice; v <= hi + 1e-12; v += nice) out.push(Number(v.toPrecision(12)));
  return out;
}

/** One panel: series drawn as polylines over shared axes. */
export function lineChart(series: Series[], o: ChartOptions, x0 = 0, y0 = 0): string {
  const W = o.width ?? 480, H = o.height ?? 300;
  const m = { l: 56, r: 16, t: 32, b: 44 };
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const xlo = Math.min(...xs), xhi = Math.max(...xs);
  const ylo = o.yMin ?? Math.min(...ys), yhi = o.yMax ?? Math.max(...ys);
  const sx = (v: number) => x0 + m.l + ((v - xlo) / (xhi - xlo || 1)) * (W - m.l - m.r);
  const sy = (v: number) => y0 + H - m.b - ((v - ylo) / (yhi - ylo || 1)) * (H - m.t - m.b);
  const parts: string[] = [`<text x="${x0 + W / 2}" y="${y0 + 20}" text-anchor="middle" font-weight="bold">${esc(o.title)}</text>`];
  for (const t of ticks(ylo, yhi)) {
    parts.push(`<line x1="${n2(sx(xlo))}" x2="${n2(sx(xhi))}" y1="${n2(sy(t))}" y2="${n2(sy(t))}" stroke="#ddd"/>`);
    parts.push(`<text x="${x0 + m.l - 6}" y="${n2(sy(t) + 4)}" text-anchor="end">${t}</text>`);
  }
  for (const t of ticks(xlo, xhi)) parts.push(`<text x="${n2(sx(t))}" y="${y0 + H - m.b + 16}" text-anchor="middle">${t}</text>`);
  parts.push(`<text x="${x0 + W / 2}" y="${y0 + H - 6}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  parts.push(`<text transform="translate(${x0 + 14},${y0 + H / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`);
  series.forEach((s, i) => {
    const pts = s.points.map(([x, y]) => `${n2(sx(x))},${n2(sy(y))}`).join(' ');
    parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${pts}"/>`);
    if (s.points.length <= 30) for (const [x, y] of s.points) parts.push(`<circle cx="${n2(sx(x))}" cy="${n2(sy(y))}" r="3" fill="${s.color}"/>`);
    parts.push(`<text x="${x0 + m.l + 8}" y="${y0 + m.t + 14 + 16 * i}" fill="${s.color}">${esc(s.name)}</text>`);
  });
  return parts.join('\n');
}

export function svgDocument(width: number, height: number, body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">\n<rect width="100%" height="100%" fill="white"/>\n${body}\n</svg>\n`;
}

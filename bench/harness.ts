// Thin tinybench wrapper: run named tasks side by side, return the median latency of each.
import { Bench } from 'tinybench';

export interface Timed {
  name: string;
  medianMs: number;
  samples: number;
}

export async function medians(tasks: [string, () => void][], opts: { time?: number; iterations?: number } = {}): Promise<Timed[]> {
  const bench = new Bench({ time: opts.time ?? 400, iterations: opts.iterations ?? 5, warmupTime: 50, warmupIterations: 2 });
  for (const [name, fn] of tasks) bench.add(name, fn);
  await bench.run();
  return bench.tasks.map((t) => {
    const r = t.result as { latency?: { p50: number; samplesCount?: number }; state?: string; error?: unknown };
    if (r.latency === undefined) throw new Error(`bench task ${t.name} failed: ${String(r.error)}`);
    return { name: t.name, medianMs: r.latency.p50, samples: r.latency.samplesCount ?? 0 };
  });
}

export function table(rows: (string | number)[][], head: string[]): string {
  const cells = [head, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? fmt(c) : c)))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => String(r[i]).length)));
  const line = (r: (string | number)[]) => r.map((c, i) => String(c).padStart(widths[i])).join('  ');
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

function fmt(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
}

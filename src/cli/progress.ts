// A one-line progress bar: `epoch 2/5 [#######-------]  48%  loss 0.412  310 img/s`.

export function progressBar(label: string, fraction: number, extra: string, width = 24): string {
  const f = Math.min(1, Math.max(0, fraction));
  const done = Math.round(f * width);
  return `${label} [${'#'.repeat(done)}${'-'.repeat(width - done)}] ${String(Math.round(f * 100)).padStart(3)}%  ${extra}`;
}

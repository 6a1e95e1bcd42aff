// A one-line progress bar for an 80- or 60-column terminal:
//   `epoch 2/5 [######------]  48% loss 0.412 ETA 1:05`   (this epoch's progress; ETA for the run)

/** At most `columns` characters. */
export function progressBar(label: string, fraction: number, extra: string, width = 12, columns = 60): string {
  const f = Math.min(1, Math.max(0, fraction));
  const done = Math.round(f * width);
  const line = `${label} [${'#'.repeat(done)}${'-'.repeat(width - done)}] ${String(Math.round(f * 100)).padStart(3)}% ${extra}`;
  return line.length <= columns ? line : line.slice(0, columns - 1) + '…';
}

/** 75 → '1:15', 3725 → '1:02:05' */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(r).padStart(2, '0')}` : `${m}:${String(r).padStart(2, '0')}`;
}

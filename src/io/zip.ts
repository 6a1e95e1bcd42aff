// ZIP archives as torch.save writes them (PKWARE APPNOTE 6.3): STORED entries only, zip64 when
// large, data aligned to 64 bytes. Reading returns views into the archive's bytes, so a checkpoint
// is never held twice; nothing is decompressed, so no entry can expand beyond the file.

import { leavesFolder, showText } from '../tensor/untrusted.js';

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const METHOD_STORED = 0;
/** PyTorch aligns each record's data to 64 bytes (with an extra field), so storages can be mapped. */
const ALIGN = 64;

export class ZipError extends Error {
  override name = 'ZipError';
}

// Slicing-by-8 (Intel, 2006): T[k][b] is the CRC of byte b followed by k zero bytes, so eight input
// bytes fold into the CRC with eight table lookups and no per-bit loop.
const CRC_TABLES = (() => {
  const t = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) for (let k = 1; k < 8; k++) t[k * 256 + n] = (t[(k - 1) * 256 + n] >>> 8) ^ t[t[(k - 1) * 256 + n] & 0xff];
  return t;
})();

/** CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as ZIP stores it. */
export function crc32(b: Uint8Array): number {
  const T = CRC_TABLES;
  let c = 0xffffffff, i = 0;
  for (const end8 = b.length - (b.length % 8); i < end8; i += 8) {
    const lo = (c ^ (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24))) >>> 0;
    c = T[1792 + (lo & 0xff)] ^ T[1536 + ((lo >>> 8) & 0xff)] ^ T[1280 + ((lo >>> 16) & 0xff)] ^ T[1024 + (lo >>> 24)] ^
      T[768 + b[i + 4]] ^ T[512 + b[i + 5]] ^ T[256 + b[i + 6]] ^ T[b[i + 7]];
  }
  for (; i < b.length; i++) c = T[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

/** name → the entry's bytes (a view into `bytes`), in central-directory order. */
export function readZip(bytes: Uint8Array): Map<string, Uint8Array> {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = bytes.length;
  const need = (at: number, n: number, what: string) => {
    if (at < 0 || at + n > len) throw new ZipError(`zip: ${what} at byte offset ${at} runs past the end of the ${len}-byte file (truncated?)`);
  };
  // End of central directory: 22 bytes plus a comment of at most 65535, searched from the end.
  let eocd = -1;
  for (let i = len - 22; i >= Math.max(0, len - 22 - 65535); i--) {
    if (dv.getUint32(i, true) === SIG_EOCD && i + 22 + dv.getUint16(i + 20, true) === len) { eocd = i; break; }
  }
  if (eocd < 0) throw new ZipError(`zip: no end-of-central-directory record in the last ${Math.min(len, 65557)} bytes (truncated or not a zip file)`);
  let count = dv.getUint16(eocd + 10, true);
  let cdSize = dv.getUint32(eocd + 12, true);
  let cdOffset = dv.getUint32(eocd + 16, true);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const loc = eocd - 20;
    if (loc < 0 || dv.getUint32(loc, true) !== SIG_ZIP64_LOCATOR) throw new ZipError(`zip: the end record at byte offset ${eocd} asks for zip64 but no zip64 locator precedes it`);
    const rec = big(dv, loc + 8, 'zip64 end record offset');
    need(rec, 56, 'the zip64 end record');
    if (dv.getUint32(rec, true) !== SIG_ZIP64_EOCD) throw new ZipError(`zip: no zip64 end record at byte offset ${rec}`);
    count = big(dv, rec + 32, 'zip64 entry count');
    cdSize = big(dv, rec + 40, 'zip64 central directory size');
    cdOffset = big(dv, rec + 48, 'zip64 central directory offset');
  }
  need(cdOffset, cdSize, 'the central directory');
  const utf8 = new TextDecoder('utf-8', { fatal: false });
  const out = new Map<string, Uint8Array>();
  const spans: { name: string; start: number; end: number }[] = [];
  let at = cdOffset;
  for (let e = 0; e < count; e++) {
    need(at, 46, `central directory entry ${e}`);
    if (dv.getUint32(at, true) !== SIG_CENTRAL) throw new ZipError(`zip: central directory entry ${e} at byte offset ${at} has a bad signature`);
    const flags = dv.getUint16(at + 8, true);
    const method = dv.getUint16(at + 10, true);
    const crc = dv.getUint32(at + 16, true);
    let csize = dv.getUint32(at + 20, true);
    let usize = dv.getUint32(at + 24, true);
    const nameLen = dv.getUint16(at + 28, true), extraLen = dv.getUint16(at + 30, true), commentLen = dv.getUint16(at + 32, true);
    let local = dv.getUint32(at + 42, true);
    need(at + 46, nameLen + extraLen + commentLen, `central directory entry ${e}'s name and extra fields`);
    const raw = utf8.decode(bytes.subarray(at + 46, at + 46 + nameLen));
    const name = showText(raw); // every message below quotes the escaped form
    // A record name is a relative path inside the archive: '..', an absolute path or a drive letter
    // would point outside it if anything ever extracted it (torch's reader refuses them too).
    if (leavesFolder(raw)) throw new ZipError(`zip: entry ${e} at byte offset ${at} is named '${name}', a path outside the archive; refused`);
    // zip64 extended information: the 8-byte values, in this order, for the fields saturated at 0xFFFFFFFF.
    for (let x = at + 46 + nameLen, xEnd = x + extraLen; x + 4 <= xEnd;) {
      const id = dv.getUint16(x, true), size = dv.getUint16(x + 2, true);
      if (id === 0x0001) {
        let p = x + 4;
        if (usize === 0xffffffff) { usize = big(dv, p, `'${name}' zip64 size`); p += 8; }
        if (csize === 0xffffffff) { csize = big(dv, p, `'${name}' zip64 compressed size`); p += 8; }
        if (local === 0xffffffff) { local = big(dv, p, `'${name}' zip64 offset`); p += 8; }
      }
      x += 4 + size;
    }
    if (flags & 1) throw new ZipError(`zip: entry '${name}' is encrypted`);
    if (method !== METHOD_STORED) {
      throw new ZipError(`zip: entry '${name}' is compressed (method ${method}${method === 8 ? ', deflate' : ''}); torch.save writes uncompressed entries — re-save it with torch.save`);
    }
    if (csize !== usize) throw new ZipError(`zip: stored entry '${name}' declares ${usize} bytes but occupies ${csize}`);
    need(local, 30, `the local header of '${name}'`);
    if (dv.getUint32(local, true) !== SIG_LOCAL) throw new ZipError(`zip: the local header of '${name}' at byte offset ${local} has a bad signature`);
    const start = local + 30 + dv.getUint16(local + 26, true) + dv.getUint16(local + 28, true);
    need(start, usize, `the data of '${name}' (${usize} bytes)`);
    if (out.has(raw)) throw new ZipError(`zip: entry '${name}' appears twice`);
    const data = bytes.subarray(start, start + usize);
    if (crc32(data) !== crc) throw new ZipError(`zip: entry '${name}' (byte offset ${start}) fails its CRC-32 check (corrupted)`);
    out.set(raw, data);
    spans.push({ name, start: local, end: start + usize });
    at += 46 + nameLen + extraLen + commentLen;
  }
  // Entries that share bytes are how "overlapping" zip bombs multiply a file; a real archive has none.
  spans.sort((a, b) => a.start - b.start);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i].start < spans[i - 1].end) throw new ZipError(`zip: entries '${spans[i - 1].name}' and '${spans[i].name}' overlap at byte offset ${spans[i].start} (a zip bomb's trick; refused)`);
  }
  return out;
}

function big(dv: DataView, at: number, what: string): number {
  if (at + 8 > dv.byteLength) throw new ZipError(`zip: ${what} at byte offset ${at} runs past the end of the file`);
  const v = dv.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ZipError(`zip: ${what} at byte offset ${at} is ${v}, beyond any real file`);
  return Number(v);
}

/** A STORED archive with each entry's data aligned to 64 bytes, deterministic (fixed timestamps). */
export function writeZip(entries: readonly (readonly [string, Uint8Array])[]): Uint8Array {
  const enc = new TextEncoder();
  const names = entries.map(([n]) => enc.encode(n));
  // Layout first: local header (30 + name + padding extra) then data, each data start on ALIGN.
  const locals: number[] = [], extras: number[] = [];
  let at = 0;
  entries.forEach(([, data], i) => {
    locals.push(at);
    const head = 30 + names[i].length;
    let extra = (ALIGN - ((at + head) % ALIGN)) % ALIGN;
    if (extra > 0 && extra < 4) extra += ALIGN; // an extra field needs 4 bytes for its own header
    extras.push(extra);
    at += head + extra + data.length;
  });
  const cdOffset = at;
  const cdSize = names.reduce((s, n) => s + 46 + n.length, 0);
  const total = cdOffset + cdSize + 22;
  if (total > 0xffffffff || entries.length > 0xffff) throw new ZipError(`zip: writing archives over 4 GiB or 65535 entries (zip64) is not supported (this one: ${total} bytes)`);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  const DOS_DATE = (0 << 9) | (1 << 5) | 1; // 1980-01-01, the earliest DOS date: the same bytes every run
  const crcs = entries.map(([, d]) => crc32(d));
  // The run of fields both headers share, in the same order (the central one adds "version made by"
  // before it): version needed 2.0, flags, method, time, date, CRC-32, both sizes, name length.
  const shared = (at: number, i: number) => {
    dv.setUint16(at, 20, true);
    dv.setUint16(at + 4, METHOD_STORED, true);
    dv.setUint16(at + 8, DOS_DATE, true);
    dv.setUint32(at + 10, crcs[i], true);
    dv.setUint32(at + 14, entries[i][1].length, true);
    dv.setUint32(at + 18, entries[i][1].length, true);
    dv.setUint16(at + 22, names[i].length, true);
  };
  entries.forEach(([, data], i) => {
    let p = locals[i];
    dv.setUint32(p, SIG_LOCAL, true);
    shared(p + 4, i);
    dv.setUint16(p + 28, extras[i], true);
    out.set(names[i], p + 30);
    p += 30 + names[i].length;
    if (extras[i] !== 0) {
      dv.setUint16(p, 0x4246, true); // 'FB': the padding field id PyTorch uses
      dv.setUint16(p + 2, extras[i] - 4, true);
      p += extras[i];
    }
    out.set(data, p);
  });
  let p = cdOffset;
  entries.forEach((_, i) => {
    dv.setUint32(p, SIG_CENTRAL, true);
    dv.setUint16(p + 4, 20, true); // version made by
    shared(p + 6, i);
    dv.setUint32(p + 42, locals[i], true);
    out.set(names[i], p + 46);
    p += 46 + names[i].length;
  });
  dv.setUint32(p, SIG_EOCD, true);
  dv.setUint16(p + 8, entries.length, true);
  dv.setUint16(p + 10, entries.length, true);
  dv.setUint32(p + 12, cdSize, true);
  dv.setUint32(p + 16, cdOffset, true);
  return out;
}

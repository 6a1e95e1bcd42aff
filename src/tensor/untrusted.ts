// Text and values that came from a file (keys, names, dtype strings, pickled arguments, JSON
// fields) are shown to a person only through these two functions: escaped, so that no control
// character, escape sequence or bidirectional override reaches a terminal, and bounded, so that a
// hostile value cannot make a message huge, deep or slow to build. Nothing here serialises a value
// whole: a memo DAG ("billion laughs"), a cycle or a 10⁶-deep nesting costs O(budget), not O(value).

/** C0 and C1 controls, DEL, line/paragraph separators and the bidirectional embeddings, overrides and isolates. */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/g;
/** The same, but a newline passes: for multi-line text this program composed itself. */
const UNSAFE_KEEP_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/g;

const escape = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** A string from a file, safe to print: every control character as \uXXXX, at most `max` characters (then '…'). */
export function showText(s: string, max = 200): string {
  const cut = s.length > max ? s.slice(0, max) : s;
  const safe = cut.replace(UNSAFE, escape);
  return s.length > max ? `${safe}… (${s.length} characters)` : safe;
}

/**
 * The last guard where a line leaves the process for a terminal: controls escaped, newlines kept
 * only when `keepNewlines` (our own multi-line text on stdout; a message on stderr is one line).
 */
export function terminalSafe(line: string, keepNewlines: boolean): string {
  return line.replace(keepNewlines ? UNSAFE_KEEP_NEWLINE : UNSAFE, escape);
}

/**
 * A bounded, escaped summary of any value (a pickled argument, a JSON field): numbers and short
 * strings as themselves, arrays and objects to depth 2 and their first few items, everything else
 * by its type. Visits at most ~40 nodes whatever the value is (shared or cyclic structure included).
 */
export function describeValue(v: unknown): string {
  let budget = 40;
  const go = (x: unknown, depth: number): string => {
    budget--;
    if (x === undefined) return 'nothing';
    if (x === null) return 'null';
    if (typeof x === 'number' || typeof x === 'boolean') return String(x);
    if (typeof x === 'bigint') {
      const s = x.toString(16);
      return s.length > 24 ? `an integer of ${Math.ceil(s.replace('-', '').length / 2)} bytes` : String(x);
    }
    if (typeof x === 'string') return `'${showText(x, 60)}'`;
    if (x instanceof Uint8Array) return `bytes of length ${x.length}`;
    if (Array.isArray(x)) {
      if (depth >= 2 || budget <= 0) return `a list of ${x.length}`;
      const shown: string[] = [];
      for (let i = 0; i < x.length && i < 6 && budget > 0; i++) shown.push(go(x[i], depth + 1));
      return `[${shown.join(', ')}${x.length > shown.length ? `, … (${x.length} items)` : ''}]`;
    }
    if (x instanceof Map) return `a dict of ${x.size}`;
    if (x instanceof Set) return `a set of ${x.size}`;
    if (typeof x === 'object') {
      const summary = (x as { summary?: unknown }).summary; // PyGlobal, PyObject: their own bounded words
      if (typeof summary === 'string') return showText(summary, 120);
      const name = (x as { constructor?: { name?: unknown } }).constructor?.name;
      return typeof name === 'string' && name !== 'Object' ? `a ${showText(name, 40)}` : 'an object';
    }
    return typeof x;
  };
  return go(v, 0);
}

/**
 * Whether a path named inside a file (a zip entry, an ONNX external-data location) could point outside
 * the folder it is relative to: absolute, a drive letter, a '..' step (either separator), or a NUL.
 */
export function leavesFolder(path: string): boolean {
  return /^[\\/]|^[A-Za-z]:|(^|[\\/])\.\.([\\/]|$)|\u0000/.test(path);
}

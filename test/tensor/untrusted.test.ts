// Paths named inside files (zip entries, ONNX external data): every way out of the folder is caught.
import { describe, expect, it } from 'vitest';
import { leavesFolder } from '../../src/tensor/untrusted.js';

describe('leavesFolder', () => {
  it('relative paths inside stay; absolute, drive letters, .. with either separator and NUL leave', () => {
    for (const p of ['data/0', 'a..b/c', '..a/b', 'weights.bin', 'x/.../y']) expect(leavesFolder(p), p).toBe(false);
    for (const p of ['/etc/passwd', '\\share\\x', 'C:/x', 'c:x', '..', '../x', 'a/../../x', 'a\\..\\x', 'a/..', 'w.bin\u0000.txt']) expect(leavesFolder(p), JSON.stringify(p)).toBe(true);
  });
});

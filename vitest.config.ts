import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // the run's temporary files under one folder, removed at the end
    globalSetup: ['test/global_setup.ts'],
    testTimeout: 60_000,
    // both cores: vitest's default on a 2-core machine is one worker (cores − 1), which runs the files one
    // after another; the files are independent (each makes its own temporary folders and processes)
    maxWorkers: 2,
    // the JSON report lets .ci/run print a plain "N passed, N failed" line
    reporters: ['default', ['json', { outputFile: 'build/test-results.json' }]],
  },
});

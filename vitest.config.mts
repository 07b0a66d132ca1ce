import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // Integration tests bind real UDP ports and start real processes; keep files from fighting over them.
    fileParallelism: false,
    reporters: ['default'],
  },
});

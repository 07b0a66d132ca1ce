import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Installs the Debian packages the tests need (rtpengine, kamailio, sipp, tshark, libsrtp2) when missing.
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // Integration tests bind real UDP ports and start real processes; keep files from fighting over them.
    fileParallelism: false,
    reporters: ['default'],
  },
});

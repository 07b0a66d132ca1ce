/**
 * Imported first by the *-kernel.test.ts wrappers: turns the kernel fast path on (NGRELAY_TEST_TABLE=0, read by
 * kernel-table.ts whenever a test starts a data plane or a relay) for the test module they import next. The
 * wrapper deletes it in afterAll, so the files that run after it in the same worker are userspace again.
 */
process.env.NGRELAY_TEST_TABLE = '0';
export {};

/**
 * NGRELAY_TEST_TABLE=0 runs the forwarding tests with the kernel fast path on (ngrelay's `--table`, the data
 * plane's `table` option); unset (or -1) = userspace only, as by default.
 */
export function testTable(): number {
  const v = Number(process.env.NGRELAY_TEST_TABLE ?? '-1');
  return Number.isInteger(v) ? v : -1;
}

/** EngineOptions for tests that create the native data plane directly. */
export function kernelTestOptions(): { table?: number; kernelAddresses?: string[] } {
  const table = testTable();
  return table >= 0 ? { table, kernelAddresses: ['127.0.0.1', '::1'] } : {};
}

/**
 * /metrics values that come from the engine: read at scrape time from the same totals as `statistics`.
 * (Names, types and labels are compared with rtpengine 10.5's page in test/integration/http-control.test.ts.)
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { CallManager } from '../../src/call/call-manager';
import { createMetricsRegistry } from '../../src/http/metrics';
import { NgProcessor } from '../../src/ng/processor';
import { testConfig } from '../support/call-fixtures';
import { FakeDataPlane } from '../support/fake-dataplane';

describe('Prometheus metrics from the engine', () => {
  it("MOS: rtpengine's mos_total, mos2_total and mos_samples_total from the engine's MOS totals (×10 scale undone)", async () => {
    const logger = pino({ level: 'silent' });
    const dataPlane = new FakeDataPlane();
    const config = testConfig();
    const manager = new CallManager(config, dataPlane, logger, {});
    const processor = new NgProcessor({ handler: () => ({}), logger });
    const registry = createMetricsRegistry({ manager, dataPlane, config, startedMs: Date.now(), controlStats: () => processor.stats() });
    // Two samples: MOS 4.3 and 3.9.
    dataPlane.mos = { samples: 2, mosX10Sum: 43 + 39, mosX10SquareSum: 43 * 43 + 39 * 39 };
    const text = await registry.metrics();
    expect(text).toMatch(/^rtpengine_mos_total 8\.2$/m);
    expect(text).toMatch(/^rtpengine_mos2_total 33\.7$/m);
    expect(text).toMatch(/^rtpengine_mos_samples_total 2$/m);
    expect(text).toMatch(/^# TYPE rtpengine_mos_total counter$/m);
  });

  it('--state-dir: ngrelay_state_* from the persistence figures, and none without it', async () => {
    const logger = pino({ level: 'silent' });
    const dataPlane = new FakeDataPlane();
    const config = testConfig();
    const manager = new CallManager(config, dataPlane, logger, {});
    const processor = new NgProcessor({ handler: () => ({}), logger });
    const base = { manager, dataPlane, config, startedMs: Date.now(), controlStats: () => processor.stats() };
    const figures = { lastWriteMs: 1_700_000_000_500, writes: 12, writeErrors: 1, lastError: 'ENOSPC', restoredCalls: 3, failedCalls: 1, skippedFiles: 2 };
    const text = await createMetricsRegistry({ ...base, stateStats: () => figures }).metrics();
    expect(text).toMatch(/^ngrelay_state_writes_total 12$/m);
    expect(text).toMatch(/^ngrelay_state_write_errors_total 1$/m);
    expect(text).toMatch(/^ngrelay_state_last_write_seconds 1700000000$/m);
    expect(text).toMatch(/^ngrelay_state_restored_calls 3$/m);
    expect(text).toMatch(/^ngrelay_state_failed_calls 1$/m);
    expect(text).toMatch(/^ngrelay_state_skipped_files 2$/m);
    expect(await createMetricsRegistry(base).metrics()).not.toContain('ngrelay_state_');
  });
});

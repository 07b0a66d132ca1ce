/**
 * The data plane's forwarding tests (dataplane.test.ts: forwarding, learning, strict-source, media-handover,
 * re-INVITE-style updates, removal, idle and overload) with the kernel fast path on (`table: 0`): the same
 * assertions hold when confirmed streams are forwarded by the eBPF program (issue 15: "the existing forwarding,
 * latching, strict-source, media-handover, re-INVITE, delete and timeout tests pass unchanged").
 */
import { afterAll } from 'vitest';
// In this order: the variable is set before the tests start their data planes.
import '../support/kernel-table-on';
import './dataplane.test';

afterAll(() => {
  delete process.env.NGRELAY_TEST_TABLE;
});

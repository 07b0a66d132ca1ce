/**
 * ngrelay forwarding real media set up over ng (relay-media.test.ts: offer/answer, timeouts with their ports
 * freed, retransmitted offers) with the kernel fast path on (`--table=0`): the same assertions hold.
 */
import { afterAll } from 'vitest';
// In this order: the variable is set before the tests start their relays.
import '../support/kernel-table-on';
import './relay-media.test';

afterAll(() => {
  delete process.env.NGRELAY_TEST_TABLE;
});

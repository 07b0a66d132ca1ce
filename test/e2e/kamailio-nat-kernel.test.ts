/**
 * The Kamailio + sipp far-end NAT end-to-end test (kamailio-nat.test.ts: the same topology and phases) with
 * the kernel fast path on (`--table=0`): two-way media through the eBPF program on the relays' bridge, the
 * streams shown "kernelized" in query, and query's counters equal to the phones' and the NATs' iptables
 * counters. Needs root (network namespaces) like the userspace run.
 */
import { afterAll } from 'vitest';
// In this order: the variable is set before the test module reads it.
import '../support/e2e-kernel-table';
import './kamailio-nat.test';

afterAll(() => {
  delete process.env.NGR_E2E_TABLE;
});

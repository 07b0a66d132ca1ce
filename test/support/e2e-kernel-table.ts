/**
 * Imported (first) by kamailio-nat-kernel.test.ts: sets the --table the Kamailio NAT test gives its relays
 * before that test's module loads (it reads NGR_E2E_TABLE once, at load).
 */
process.env.NGR_E2E_TABLE = '0';
export {};

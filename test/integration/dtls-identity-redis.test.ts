/**
 * The relay's DTLS certificate with `--redis` and no state dir (src/state/redis-dtls-identity.ts), the real
 * `ngrelay` binary and a real `redis-server`: a restart presents the same a=fingerprint; a standby started
 * after the active relay takes the active relay's certificate, so its re-offer of a taken-over DTLS call shows
 * the fingerprint the party already has (one that has its own keeps it and says so); a corrupt certificate
 * key is skipped with a log line; Redis down at start costs nothing but a new certificate (written once Redis
 * is back).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startNgrelay } from '../support/ngrelay';
import type { RelayUnderTest } from '../support/relay';
import { NgRawClient } from '../support/ng-client';
import { toPlain, type BDict } from '../support/bencode';
import { sleep, waitUntil } from '../support/rtp-packets';
import { freeMediaRange, freeUdpPort } from '../support/free-ports';
import { TestRedis } from '../support/redis-server';

const IDENTITY_KEY = 'ngrelay-dtls-identity';

let redis: TestRedis;
const relays: RelayUnderTest[] = [];
const clients: NgRawClient[] = [];

beforeAll(async () => {
  redis = await TestRedis.start();
}, 30_000);

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const r of relays.splice(0)) await r.stop();
});

afterAll(async () => {
  await redis?.stop();
});

interface Node {
  relay: RelayUnderTest;
  ng: NgRawClient;
}

async function node(ngPort: number, media: { portMin: number; portMax: number }, args: string[]): Promise<Node> {
  const relay = await startNgrelay({ ngPort, ...media, deleteDelay: 0, extraArgs: args });
  relays.push(relay);
  const ng = await NgRawClient.open(ngPort);
  clients.push(ng);
  return { relay, ng };
}

async function crash(n: Node): Promise<void> {
  n.ng.close();
  clients.splice(clients.indexOf(n.ng), 1);
  n.relay.process.killNow();
  await n.relay.process.exited;
  relays.splice(relays.indexOf(n.relay), 1);
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return true;
    await sleep(50);
  }
  return false;
}

function plainSdp(port: number): string {
  return ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio ${port} RTP/AVP 0`,
    'a=rtpmap:0 PCMU/8000', 'a=sendrecv', ''].join('\r\n');
}

/** An offer from a plain RTP party towards a DTLS-SRTP one: the relay's SDP carries its a=fingerprint. */
async function offerFingerprint(n: Node, callId: string): Promise<string> {
  const reply: BDict = (await n.ng.request({ command: 'offer', 'call-id': callId, 'from-tag': 'caller', 'transport-protocol': 'UDP/TLS/RTP/SAVP', sdp: plainSdp(30000) })).dict;
  if (!reply['sdp']) throw new Error(`offer failed: ${JSON.stringify(toPlain(reply))}`);
  const fp = /^a=fingerprint:sha-256 (\S+)/m.exec((reply['sdp'] as Buffer).toString('latin1'))?.[1];
  if (!fp) throw new Error('no a=fingerprint in the offer');
  return fp;
}

describe('DTLS certificate in Redis (--redis, no --state-dir)', () => {
  it('a restart with the same command line presents the same a=fingerprint, for a restored call and a new one', async () => {
    const media = await freeMediaRange(8);
    const ngPort = await freeUdpPort();
    const args = [`--redis=${redis.url(3)}`];
    const first = await node(ngPort, media, args);
    const before = await offerFingerprint(first, 'id-restart');
    const db = redis.client(3);
    try {
      expect(await waitFor(async () => (await db.exists(IDENTITY_KEY, 'id-restart')) === 2, 2000)).toBe(true);
      // A call named like the certificate's key does not overwrite it (it is not written to Redis).
      expect(await offerFingerprint(first, IDENTITY_KEY)).toBe(before);
      await sleep(700); // two progress ticks: a call written by them would be in the key by now
      expect(first.relay.process.stderrText).toContain('call not written to Redis: its call-id is the key of the DTLS certificate');
      await crash(first);
      const second = await node(ngPort, media, args);
      // The restored call's re-offer and a new call both show the certificate of the first run.
      expect(await offerFingerprint(second, 'id-restart')).toBe(before);
      expect(await offerFingerprint(second, 'id-new')).toBe(before);
      const log = second.relay.process.stderrText;
      expect(log).toContain('DTLS certificate taken from Redis');
      // The certificate key is not taken for a call (nor skipped as a broken one).
      expect(log).toMatch(/"calls":1,"skipped":0,.*calls read from Redis/);
      expect(log).toMatch(/"call-id":"id-restart".*call restored/);
    } finally {
      db.disconnect();
    }
  }, 60_000);

  it('a standby started after the active relay takes its certificate: a taken-over DTLS call\'s re-offer shows the fingerprint the party has', async () => {
    const media = await freeMediaRange(8);
    const a = await node(await freeUdpPort(), media, [`--redis=${redis.url(4)}`]);
    const b = await node(await freeUdpPort(), media, [`--redis=${redis.url(5)}`, '--subscribe-keyspace=4']);
    const onA = await offerFingerprint(a, 'id-standby');
    expect(b.relay.process.stderrText).toMatch(/"redis":"127\.0\.0\.1:\d+\/4".*DTLS certificate taken from Redis/);
    expect(await waitUntil(() => b.relay.process.stderrText.includes('foreign call held'), 3000)).toBe(true);
    await crash(a);
    await sleep(400); // B binds A's freed ports within its retry interval
    // The re-INVITE reaches B (the service address moved): B takes the call over with A's certificate.
    expect(await offerFingerprint(b, 'id-standby')).toBe(onA);
    expect(b.relay.process.stderrText).toMatch(/"call-id":"id-standby".*foreign call taken over/);
    expect(await offerFingerprint(b, 'id-standby-new')).toBe(onA);
    // B's database now holds the same certificate: B's own restart keeps it too.
    expect(b.relay.process.stderrText).not.toContain('cannot write the DTLS certificate');
    const db5 = redis.client(5);
    const db4 = redis.client(4);
    try {
      expect(await waitFor(async () => (await db5.exists(IDENTITY_KEY)) === 1, 2000)).toBe(true);
      expect((await db5.getBuffer(IDENTITY_KEY))?.equals((await db4.getBuffer(IDENTITY_KEY)) ?? Buffer.alloc(0))).toBe(true);
    } finally {
      db5.disconnect();
      db4.disconnect();
    }
  }, 60_000);

  it('a standby that has a certificate of its own keeps it and names the followed database that holds another', async () => {
    const media = await freeMediaRange(8);
    const bPort = await freeUdpPort();
    const bArgs = [`--redis=${redis.url(11)}`, '--subscribe-keyspace=10'];
    const b = await node(bPort, media, bArgs);
    const ownB = await offerFingerprint(b, 'id-own-b');
    const a = await node(await freeUdpPort(), await freeMediaRange(8), [`--redis=${redis.url(10)}`]);
    const onA = await offerFingerprint(a, 'id-own-a');
    expect(onA).not.toBe(ownB);
    await crash(b);
    const b2 = await node(bPort, media, bArgs);
    expect(b2.relay.process.stderrText).toMatch(/"redis":"127\.0\.0\.1:\d+\/10".*this Redis database holds another DTLS certificate than the one used here/);
    expect(await offerFingerprint(b2, 'id-own-b-2')).toBe(ownB);
  }, 60_000);

  it('a corrupt certificate key is skipped with a clear log line: a new certificate is made, stored, and kept by the next start', async () => {
    const media = await freeMediaRange(8);
    const ngPort = await freeUdpPort();
    const db = redis.client(6);
    try {
      await db.set(IDENTITY_KEY, 'not a certificate');
      const args = [`--redis=${redis.url(6)}`];
      const first = await node(ngPort, media, args);
      expect(first.relay.process.stderrText).toMatch(/"key":"ngrelay-dtls-identity".*"reason":"[^"]+".*DTLS certificate key in Redis skipped/);
      const made = await offerFingerprint(first, 'id-corrupt');
      expect(await waitFor(async () => (await db.getBuffer(IDENTITY_KEY))?.toString() !== 'not a certificate', 2000)).toBe(true);
      await crash(first);
      const second = await node(ngPort, media, args);
      expect(second.relay.process.stderrText).not.toContain('DTLS certificate key in Redis skipped');
      expect(await offerFingerprint(second, 'id-corrupt-2')).toBe(made);
    } finally {
      db.disconnect();
    }
  }, 60_000);

  it('Redis down at start (--no-redis-required): the relay starts with a new certificate, says so once, and stores it once Redis is back', async () => {
    const media = await freeMediaRange(8);
    const ngPort = await freeUdpPort();
    await redis.kill9();
    try {
      const n = await node(ngPort, media, [`--redis=${redis.url(9)}`, '--no-redis-required']);
      const fp = await offerFingerprint(n, 'id-down');
      expect(n.relay.process.stderrText.split('DTLS certificate not read from Redis').length - 1).toBe(1);
      await redis.restart();
      const db = redis.client(9);
      try {
        expect(await waitFor(async () => (await db.exists(IDENTITY_KEY)) === 1, 8000)).toBe(true);
      } finally {
        db.disconnect();
      }
      await crash(n);
      const again = await node(ngPort, media, [`--redis=${redis.url(9)}`, '--no-redis-required']);
      expect(await offerFingerprint(again, 'id-down-2')).toBe(fp);
    } finally {
      await redis.restart(); // the other tests' server, empty
    }
  }, 60_000);
});

/**
 * Integration: the real `ngrelay` binary driven over UDP by an independent client (`rtpengine-client` from
 * npm, as drachtio/jambonz use it) and by raw datagrams for byte-exact, retransmitted and malformed cases.
 *
 * Every test also runs against rtpengine 10.5: the expectations here are rtpengine's observed behaviour,
 * and the reference run proves each of them is right (if a reference test fails, the test is wrong, not
 * ngrelay).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, NgReplyDict } from 'rtpengine-client';
import { BInputDict } from '../support/bencode';
import { NgRawClient, NgReply, textOf } from '../support/ng-client';
import { runNgrelay, startNgrelay } from '../support/ngrelay';
import { RelayOptions, RelayUnderTest } from '../support/relay';
import { startRtpengine } from '../support/rtpengine';
import { calleeAudio, callerAudio, mediaPorts } from '../support/sdp-fixtures';

// Ports below the ephemeral range (32768+) and outside rtpengine's default 30000-40000 that other relays on
// this machine use; ng ports next to the compatibility test's 22302/22303.
interface Target {
  name: string;
  start: (options: RelayOptions) => Promise<RelayUnderTest>;
  main: RelayOptions;
  /** Four ports: exactly one call (two port pairs) fits. */
  tiny: RelayOptions;
}

const TARGETS: Target[] = [
  {
    name: 'ngrelay',
    start: startNgrelay,
    main: { ngPort: 22311, portMin: 26000, portMax: 26999 },
    tiny: { ngPort: 22312, portMin: 28000, portMax: 28003 },
  },
  {
    name: 'rtpengine 10.5 (reference)',
    start: startRtpengine,
    main: { ngPort: 22313, portMin: 27000, portMax: 27999 },
    tiny: { ngPort: 22314, portMin: 28100, portMax: 28103 },
  },
];

const FROM = 'from-A';
const TO = 'to-B';

async function openClient(): Promise<Client> {
  const client = new Client({ timeout: 3000 });
  await new Promise<void>((resolve) => client.once('listening', () => resolve()));
  return client;
}

function offerRequest(callId: string, port: number): BInputDict {
  return { command: 'offer', 'call-id': callId, 'from-tag': FROM, sdp: callerAudio(port) };
}

function answerRequest(callId: string, port: number): BInputDict {
  return { command: 'answer', 'call-id': callId, 'from-tag': FROM, 'to-tag': TO, sdp: calleeAudio(port) };
}

function expectOk(reply: NgReply, what: string): void {
  expect(reply.plain, what).toMatchObject({ result: 'ok' });
}

/** The relay-side port of an SDP reply's first m= line. */
function firstPort(reply: NgReply | NgReplyDict): number {
  const sdp = isRawReply(reply) ? textOf(reply.dict, 'sdp') : (reply.sdp as string | undefined);
  const port = mediaPorts(sdp ?? '')[0];
  if (port === undefined) throw new Error(`no m= line in ${JSON.stringify(sdp)}`);
  return port;
}

function isRawReply(reply: NgReply | NgReplyDict): reply is NgReply {
  return Buffer.isBuffer((reply as NgReply).datagram);
}

type Loose = { [key: string]: unknown };

/**
 * The signalling state of a call from a query reply: tags, media, allocated local ports and the endpoints
 * the SDPs announced. Media counters and learned endpoints are left out on purpose: other programs on this
 * machine may send stray packets to our ports, and that is not what these tests are about.
 */
function signallingState(query: NgReply): unknown {
  const tags = (query.plain.tags ?? {}) as Record<string, Loose>;
  return {
    result: query.plain.result,
    created: query.plain.created,
    created_us: query.plain.created_us,
    tags: Object.fromEntries(
      Object.entries(tags).map(([key, tag]) => [
        key,
        {
          tag: tag.tag,
          medias: ((tag.medias ?? []) as Loose[]).map((media) => ({
            index: media.index,
            type: media.type,
            protocol: media.protocol,
            streams: ((media.streams ?? []) as Loose[]).map((stream) => ({
              'local port': stream['local port'],
              'local address': stream['local address'],
              'advertised endpoint': stream['advertised endpoint'],
            })),
          })),
        },
      ]),
    ),
  };
}

/** Every local port a query reply lists, sorted. */
function localPorts(query: NgReply): number[] {
  const tags = (query.plain.tags ?? {}) as Record<string, Loose>;
  const ports: number[] = [];
  for (const tag of Object.values(tags)) {
    for (const media of (tag.medias ?? []) as Loose[]) {
      for (const stream of (media.streams ?? []) as Loose[]) ports.push(stream['local port'] as number);
    }
  }
  return ports.sort((a, b) => a - b);
}

interface MalformedCase {
  name: string;
  /** The body after `<cookie><space>`. */
  body: (callId: string) => Buffer | BInputDict;
  reason: string;
  json?: boolean;
}

const garbage = (text: string) => (): Buffer => Buffer.from(text, 'latin1');

/** Malformed requests and rtpengine 10.5's error-reason for each (observed on the reference). */
const MALFORMED: MalformedCase[] = [
  { name: 'not bencode at all', body: garbage('hello world'), reason: 'Invalid NG data format' },
  { name: 'truncated bencode', body: garbage('d7:command5:offer7:call-id'), reason: 'Could not decode bencode dictionary' },
  { name: 'a list instead of a dict', body: garbage('l4:pinge'), reason: 'Invalid NG data format' },
  { name: 'no command key', body: (callId) => ({ 'call-id': callId }), reason: 'Dictionary contains no key "command"' },
  { name: 'unknown command', body: (callId) => ({ command: 'frobnicate', 'call-id': callId }), reason: 'Unrecognized command' },
  { name: 'offer without call-id', body: () => ({ command: 'offer', 'from-tag': FROM, sdp: callerAudio(41000) }), reason: 'No call-id in message' },
  { name: 'offer without from-tag', body: (callId) => ({ command: 'offer', 'call-id': callId, sdp: callerAudio(41000) }), reason: 'No from-tag in message' },
  { name: 'offer without sdp', body: (callId) => ({ command: 'offer', 'call-id': callId, 'from-tag': FROM }), reason: 'No SDP body in message' },
  {
    name: 'answer without to-tag',
    body: (callId) => ({ command: 'answer', 'call-id': callId, 'from-tag': FROM, sdp: calleeAudio(41002) }),
    reason: 'No to-tag in message',
  },
  {
    name: 'offer with garbage SDP',
    body: (callId) => ({ command: 'offer', 'call-id': callId, 'from-tag': FROM, sdp: 'this is not an SDP body' }),
    reason: 'Failed to parse SDP',
  },
  { name: 'truncated JSON', body: garbage('{"command":'), reason: 'Failed to parse JSON document', json: true },
];

describe.each(TARGETS)('$name over UDP', (target) => {
  let relay: RelayUnderTest;
  let client: Client;
  let raw: NgRawClient;

  beforeAll(async () => {
    relay = await target.start(target.main);
    client = await openClient();
    raw = await NgRawClient.open(relay.ngPort, relay.ngHost);
  }, 600_000);

  afterAll(async () => {
    client?.close();
    raw?.close();
    await relay?.stop();
  });

  /**
   * One request as a proxy retransmits it: twice back to back (the second arrives while the first may still be
   * handled), then once more after the reply. The three replies, in order.
   */
  const retransmitted = async (cookie: string, request: BInputDict): Promise<[NgReply, NgReply, NgReply]> => {
    const datagram = NgRawClient.frame(cookie, request);
    raw.sendDatagram(datagram);
    raw.sendDatagram(datagram);
    const first = await raw.nextReply(cookie, 4000);
    const second = await raw.nextReply(cookie, 4000);
    raw.sendDatagram(datagram);
    const third = await raw.nextReply(cookie, 4000);
    return [first, second, third];
  };

  const rawRequest = async (body: BInputDict | Buffer): Promise<NgReply> => {
    try {
      return await raw.request(body, { retransmitMs: 1000, deadlineMs: 4000 });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${relay.process.describe()}`);
    }
  };

  it('ping answers pong (rtpengine-client)', async () => {
    expect(await client.ping(relay.ngPort, relay.ngHost)).toEqual({ result: 'pong' });
  });

  it('ping: the reply datagram is byte-exact `<cookie> d6:result4:ponge`', async () => {
    const reply = await rawRequest({ command: 'ping' });
    expect(reply.datagram.toString('latin1')).toBe(`${reply.cookie} d6:result4:ponge`);
  });

  it('a JSON request gets a JSON reply', async () => {
    const reply = await rawRequest(Buffer.from('{"command":"ping"}'));
    expect(reply.body[0], reply.datagram.toString('latin1')).toBe(0x7b);
    expect(JSON.parse(reply.body.toString('utf8'))).toEqual({ result: 'pong' });
  });

  it('offer, answer, query, list, delete and query again (rtpengine-client)', async () => {
    const callId = 'int-client-flow';
    const { ngPort, ngHost } = relay;
    const offered = await client.offer(ngPort, ngHost, { 'call-id': callId, 'from-tag': FROM, sdp: callerAudio(40200) });
    expect(offered.result, JSON.stringify(offered)).toBe('ok');
    const offerPort = firstPort(offered);
    expect(offered.sdp).toContain('c=IN IP4 127.0.0.1\r\n');
    expect(offered.sdp).toContain(`a=rtcp:${offerPort + 1}\r\n`);
    expect(offerPort % 2).toBe(0);
    expect(offerPort).toBeGreaterThanOrEqual(relay.portMin);
    expect(offerPort).toBeLessThanOrEqual(relay.portMax);

    const answered = await client.answer(ngPort, ngHost, { 'call-id': callId, 'from-tag': FROM, 'to-tag': TO, sdp: calleeAudio(40202) });
    expect(answered.result, JSON.stringify(answered)).toBe('ok');
    const answerPort = firstPort(answered);
    expect(answerPort).not.toBe(offerPort);

    const query = await client.query(ngPort, ngHost, { 'call-id': callId });
    expect(query.result, JSON.stringify(query)).toBe('ok');
    const tags = query.tags as Record<string, { medias: { streams: Record<string, unknown>[] }[] }>;
    expect(Object.keys(tags).sort()).toEqual([FROM, TO].sort());
    // The caller's leg is served on the port given to the caller (in the answer), and vice versa.
    expect(tags[FROM]?.medias[0]?.streams[0]?.['local port']).toBe(answerPort);
    expect(tags[TO]?.medias[0]?.streams[0]?.['local port']).toBe(offerPort);
    expect(tags[FROM]?.medias[0]?.streams[0]?.endpoint).toMatchObject({ address: '127.0.0.41', port: 40200 });
    expect(typeof query.created).toBe('number');
    expect(query.totals).toMatchObject({ RTP: { packets: expect.any(Number) }, RTCP: { packets: expect.any(Number) } });

    const list = await client.list(ngPort, ngHost);
    expect(list.result).toBe('ok');
    expect(list.calls).toContain(callId);

    const deleted = await client.delete(ngPort, ngHost, { 'call-id': callId, 'from-tag': FROM });
    expect(deleted.result, JSON.stringify(deleted)).toBe('ok');
    expect(Object.keys(deleted.tags as object).sort()).toEqual([FROM, TO].sort());

    // delete-delay (default 30 s): the call is still there to be queried.
    const after = await client.query(ngPort, ngHost, { 'call-id': callId });
    expect(after.result, JSON.stringify(after)).toBe('ok');
  });

  it('statistics (rtpengine-client)', async () => {
    const stats = await client.statistics(relay.ngPort, relay.ngHost);
    expect(stats.result, JSON.stringify(stats).slice(0, 500)).toBe('ok');
    expect(stats.statistics).toMatchObject({
      currentstatistics: { sessionsown: expect.any(Number), sessionstotal: expect.any(Number) },
      totalstatistics: { managedsessions: expect.any(Number) },
    });
  });

  it('SDP bytes the relay does not own pass through byte for byte (non-UTF-8 included)', async () => {
    const odd = Buffer.from('a=x-note:caf\xe9 \xff\xfe\r\n', 'latin1');
    const sdp = Buffer.concat([Buffer.from(callerAudio(40210), 'latin1'), odd]);
    const reply = await rawRequest({ command: 'offer', 'call-id': 'int-bytes', 'from-tag': FROM, sdp });
    expectOk(reply, 'offer');
    const replySdp = reply.dict.sdp;
    expect(Buffer.isBuffer(replySdp)).toBe(true);
    expect((replySdp as Buffer).includes(odd), (replySdp as Buffer).toString('latin1')).toBe(true);
  });

  it('a retransmitted offer cookie gets the identical reply and sets the call up once', async () => {
    const callId = 'int-retransmit-offer';
    const cookie = raw.newCookie();
    const [first, second, third] = await retransmitted(cookie, offerRequest(callId, 40220));
    expectOk(first, 'offer');
    expect(second.datagram.equals(first.datagram), 'second reply differs').toBe(true);
    expect(third.datagram.equals(first.datagram), 'third reply differs').toBe(true);

    // One set of ports: the two monologues of one offer, two streams each, the offer's port among them.
    const query = await rawRequest({ command: 'query', 'call-id': callId });
    expectOk(query, 'query');
    const ports = localPorts(query);
    expect(ports.length, JSON.stringify(query.plain)).toBe(4);
    expect(new Set(ports).size).toBe(4);
    expect(ports).toContain(firstPort(first));
  });

  it('a retransmitted delete cookie gets the cached reply, not "not found" from running twice', async () => {
    const callId = 'int-retransmit-delete';
    expectOk(await rawRequest(offerRequest(callId, 40230)), 'offer');
    expectOk(await rawRequest(answerRequest(callId, 40232)), 'answer');
    const cookie = raw.newCookie();
    const [first, second, third] = await retransmitted(cookie, {
      command: 'delete',
      'call-id': callId,
      'from-tag': FROM,
      'delete-delay': 0,
    });
    expectOk(first, 'delete');
    expect(first.plain.warning, 'the first delete found the call').toBeUndefined();
    expect(second.datagram.equals(first.datagram), `second reply differs: ${second.datagram.toString('latin1')}`).toBe(true);
    expect(third.datagram.equals(first.datagram), `third reply differs: ${third.datagram.toString('latin1')}`).toBe(true);
    // A new cookie really runs again: the call is gone now (delete-delay 0).
    const again = await rawRequest({ command: 'delete', 'call-id': callId, 'from-tag': FROM });
    expect(again.plain).toMatchObject({ result: 'ok', warning: "Call-ID not found or tags didn't match" });
  });

  describe('malformed datagrams get result error and change no call', () => {
    const callId = 'int-intact';
    let before: unknown;

    beforeAll(async () => {
      expectOk(await rawRequest(offerRequest(callId, 40240)), 'offer');
      expectOk(await rawRequest(answerRequest(callId, 40242)), 'answer');
      before = signallingState(await rawRequest({ command: 'query', 'call-id': callId }));
    });

    it.each(MALFORMED)('$name → "$reason"', async (testCase) => {
      const reply = await rawRequest(testCase.body(callId));
      if (testCase.json) expect(reply.body[0], 'a JSON request gets a JSON reply').toBe(0x7b);
      expect(reply.plain).toEqual({ result: 'error', 'error-reason': testCase.reason });
      const after = signallingState(await rawRequest({ command: 'query', 'call-id': callId }));
      expect(after).toEqual(before);
    });
  });

  it('port exhaustion answers "Ran out of ports" and leaves the existing call intact', async () => {
    const tiny = await target.start(target.tiny);
    const tinyClient = await NgRawClient.open(tiny.ngPort, tiny.ngHost);
    try {
      const ask = (body: BInputDict): Promise<NgReply> => tinyClient.request(body, { retransmitMs: 1000, deadlineMs: 4000 });
      expectOk(await ask(offerRequest('int-tiny-1', 40250)), 'first offer');
      expectOk(await ask(answerRequest('int-tiny-1', 40252)), 'first answer');
      const before = await ask({ command: 'query', 'call-id': 'int-tiny-1' });
      expectOk(before, 'query');
      expect(localPorts(before)).toEqual([0, 1, 2, 3].map((i) => tiny.portMin + i));

      const refused = await ask(offerRequest('int-tiny-2', 40260));
      expect(refused.plain).toEqual({ result: 'error', 'error-reason': 'Ran out of ports' });
      // The refused call does not linger, and the existing one is as it was.
      expect((await ask({ command: 'query', 'call-id': 'int-tiny-2' })).plain).toEqual({ result: 'error', 'error-reason': 'Unknown call-id' });
      expect(signallingState(await ask({ command: 'query', 'call-id': 'int-tiny-1' }))).toEqual(signallingState(before));
    } finally {
      tinyClient.close();
      await tiny.stop();
    }
  });
});

describe('ngrelay command line', () => {
  it('an unknown option exits with status 2 and a one-line message naming it', async () => {
    const result = await runNgrelay(['--bogus']);
    expect(result.timedOut, 'ngrelay kept running').toBe(false);
    expect(result.code, result.stderr).toBe(2);
    const message = result.stderr.trim();
    expect(message.split('\n'), `stderr: ${result.stderr}`).toHaveLength(1);
    expect(message).toContain('--bogus');
  });

  it('a bad value exits with status 2 and names the option', async () => {
    const result = await runNgrelay(['--config-file=none', '--port-min=banana']);
    expect(result.timedOut, 'ngrelay kept running').toBe(false);
    expect(result.code, result.stderr).toBe(2);
    const message = result.stderr.trim();
    expect(message.split('\n'), `stderr: ${result.stderr}`).toHaveLength(1);
    expect(message).toContain('port-min');
  });
});

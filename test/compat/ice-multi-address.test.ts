/**
 * ICE candidates for an interface name with two addresses, side by side with rtpengine 10.5: both relays run
 * with `--interface=127.0.0.1 --interface=127.0.0.2` (one name, "default") and get the same offers with
 * `ICE=force`. Their a=candidate lines must agree once foundations and ports are named by first appearance:
 * one host candidate per address and component, RTP ones first, the same port pair on both addresses (a
 * single muxed port: any free one on each), the local preference one lower per address, a foundation per address. Without ICE both give one address only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NgRawClient, textOf } from '../support/ng-client';
import type { BInputDict } from '../support/bencode';
import { freeMediaRange, freeUdpPort } from '../support/free-ports';
import type { RelayUnderTest } from '../support/relay';
import { startRtpengine } from '../support/rtpengine';
import { startNgrelay } from '../support/ngrelay';

const SECOND = '--interface=127.0.0.2';

function plainOffer(port: number, extra: string[] = []): string {
  return ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio ${port} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', ...extra, ''].join('\r\n');
}

/** The a=candidate lines with foundations and ports replaced by names in order of first appearance. */
function candidateShape(sdp: string): string[] {
  const names = new Map<string, string>();
  const name = (kind: string, v: string): string => {
    const key = `${kind}:${v}`;
    if (!names.has(key)) names.set(key, `${kind}${[...names.keys()].filter((k) => k.startsWith(`${kind}:`)).length + 1}`);
    return names.get(key) as string;
  };
  return [...sdp.matchAll(/^a=candidate:(\S+) (\d) (\S+) (\d+) (\S+) (\d+) (typ .*?)\r?$/gm)].map(
    (m) => `candidate:${name('F', m[1]!)} ${m[2]} ${m[3]!.toUpperCase()} ${m[4]} ${m[5]} ${name('P', m[6]!)} ${m[7]}`,
  );
}

const relays: RelayUnderTest[] = [];
const clients: NgRawClient[] = [];

async function start(which: 'rtpengine' | 'ngrelay', second = SECOND): Promise<NgRawClient> {
  const { portMin, portMax } = await freeMediaRange(40);
  const options = { ngPort: await freeUdpPort(), portMin, portMax, deleteDelay: 0, extraArgs: [second] };
  const relay = which === 'rtpengine' ? await startRtpengine(options) : await startNgrelay(options);
  relays.push(relay);
  const client = await NgRawClient.open(relay.ngPort, relay.ngHost);
  clients.push(client);
  return client;
}

let rtpengine: NgRawClient;
let ngrelay: NgRawClient;

beforeAll(async () => {
  rtpengine = await start('rtpengine');
  ngrelay = await start('ngrelay');
}, 60_000);
afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(relays.map((r) => r.stop()));
});

async function offerBoth(flags: BInputDict, sdp: string, pair: [NgRawClient, NgRawClient] = [rtpengine, ngrelay]): Promise<{ reference: string; ours: string }> {
  const callId = `h1-compat-${Date.now()}-${Math.random()}`;
  const command = { command: 'offer', 'call-id': callId, 'from-tag': 'a', sdp, ...flags };
  const [r, n] = await Promise.all(pair.map((c) => c.request(command)));
  await Promise.all(pair.map((c) => c.request({ command: 'delete', 'call-id': callId, 'from-tag': 'a' })));
  return { reference: textOf(r!.dict, 'sdp') ?? '', ours: textOf(n!.dict, 'sdp') ?? '' };
}

describe('ICE candidates for two addresses on one interface name, as rtpengine 10.5', () => {
  it('separate RTCP: four host candidates, RTP first, one foundation and one port pair for both addresses', async () => {
    const { reference, ours } = await offerBoth({ ICE: 'force' }, plainOffer(30000));
    const shape = candidateShape(reference);
    expect(shape).toEqual([
      'candidate:F1 1 UDP 2130706431 127.0.0.1 P1 typ host',
      'candidate:F2 1 UDP 2130706175 127.0.0.2 P1 typ host',
      'candidate:F1 2 UDP 2130706430 127.0.0.1 P2 typ host',
      'candidate:F2 2 UDP 2130706174 127.0.0.2 P2 typ host',
    ]);
    expect(candidateShape(ours)).toEqual(shape);
  });

  it('rtcp-mux offered with rtcp-mux require: two RTP candidates', async () => {
    const { reference, ours } = await offerBoth({ ICE: 'force', 'rtcp-mux': ['require'] }, plainOffer(30002, ['a=rtcp-mux']));
    // A single port per address: rtpengine 10.5 takes any free one on each (ngrelay the same one where free),
    // so the ports are not compared here.
    const anyPort = (lines: string[]): string[] => lines.map((l) => l.replace(/ P\d+ /, ' P '));
    expect(anyPort(candidateShape(reference))).toEqual([
      'candidate:F1 1 UDP 2130706431 127.0.0.1 P typ host',
      'candidate:F2 1 UDP 2130706175 127.0.0.2 P typ host',
    ]);
    expect(anyPort(candidateShape(ours))).toEqual(anyPort(candidateShape(reference)));
  });

  it('without ICE: no candidates, the first address in c=', async () => {
    const { reference, ours } = await offerBoth({}, plainOffer(30004));
    for (const sdp of [reference, ours]) {
      expect(candidateShape(sdp)).toEqual([]);
      expect(sdp).toMatch(/^c=IN IP4 127\.0\.0\.1\r?$/m);
    }
  });
});

describe('ICE candidates for IPv4 and IPv6 addresses on one interface name, as rtpengine 10.5', () => {
  let pair: [NgRawClient, NgRawClient];
  beforeAll(async () => {
    pair = [await start('rtpengine', '--interface=::1'), await start('ngrelay', '--interface=::1')];
  }, 60_000);

  it('an IPv4 offer: the IPv4 address first, then ::1, on the same ports', async () => {
    const { reference, ours } = await offerBoth({ ICE: 'force' }, plainOffer(30006), pair);
    const shape = candidateShape(reference);
    expect(shape).toEqual([
      'candidate:F1 1 UDP 2130706431 127.0.0.1 P1 typ host',
      'candidate:F2 1 UDP 2130706175 ::1 P1 typ host',
      'candidate:F1 2 UDP 2130706430 127.0.0.1 P2 typ host',
      'candidate:F2 2 UDP 2130706174 ::1 P2 typ host',
    ]);
    expect(candidateShape(ours)).toEqual(shape);
    expect(ours).toMatch(/^c=IN IP4 127\.0\.0\.1\r?$/m);
  });
});

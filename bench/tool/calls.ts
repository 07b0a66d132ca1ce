/**
 * Sets calls up on a relay over ng the way Kamailio's rtpengine module does (offer with from-tag and
 * received-from, answer with to-tag; ICE removed, origin and session-connection replaced), with the
 * test suite's ng client and SDP builder, so the benchmark and the tests speak ng one way.
 */
import crypto from 'node:crypto';
import { NgRawClient } from '../../test/support/ng-client';
import type { PlainValue } from '../../test/support/bencode';
import { buildSdp } from '../../test/support/sdp-fixtures';
import { srtpSuite } from '../../src/dataplane/srtp-suites';

/** Phone sockets of one side: the generator sends from and the sink receives on these. */
export interface Endpoint {
  ip: string;
  port: number;
}

/** Where the phones live: side A and side B addresses and the first phone port. */
export interface PhonePlan {
  ipA: string;
  ipB: string;
  /** First port of side A; side B uses the same ports on its own address, or the next block on a shared one. */
  portBase: number;
  /** Endpoint sockets per side, shared round-robin by the calls (the sink tells streams apart by SSRC). */
  perSide: number;
}

export function phoneOf(plan: PhonePlan, side: 'A' | 'B', i: number, calls: number): Endpoint {
  const k = i % Math.min(calls, plan.perSide);
  const sideOffset = side === 'B' && plan.ipA === plan.ipB ? 2 * plan.perSide : 0;
  return { ip: side === 'A' ? plan.ipA : plan.ipB, port: plan.portBase + sideOffset + 2 * k };
}

export type SrtpSuite = 'AES_CM_128_HMAC_SHA1_80' | 'AES_CM_128_HMAC_SHA1_32' | 'AEAD_AES_128_GCM';

/** SDES master key + salt length (bytes) per suite, from the one suite table (src/dataplane/srtp-suites.ts). */
export const SRTP_KEY_LENGTH: Record<SrtpSuite, number> = Object.fromEntries(
  (['AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32', 'AEAD_AES_128_GCM'] as const).map((name) => {
    const suite = srtpSuite(name);
    if (!suite) throw new Error(`SRTP suite ${name} missing from src/dataplane/srtp-suites.ts`);
    return [name, suite.masterKeyLength + suite.masterSaltLength];
  }),
) as Record<SrtpSuite, number>;

export interface SdesKey {
  tag: number;
  suite: SrtpSuite;
  key: Buffer;
}

export const newSdesKey = (tag: number, suite: SrtpSuite): SdesKey => ({ tag, suite, key: crypto.randomBytes(SRTP_KEY_LENGTH[suite]) });

/** srtp-rtp: SRTP phone A, plain phone B; srtp-srtp: both SDES with different suites (forces re-encrypt). */
export interface SrtpPlan {
  kind: 'srtp-rtp' | 'srtp-srtp';
  suite: SrtpSuite;
}

/** The keys of one direction: what the sender protects with and the sink unprotects with (null = plain). */
export interface DirectionKeys {
  tx: SdesKey | null;
  rx: SdesKey | null;
}

export interface CallLegs {
  a: Endpoint;
  b: Endpoint;
  /** Where A sends (from the answer reply's SDP). */
  toRelayFromA: Endpoint;
  /** Where B sends (from the offer reply's SDP). */
  toRelayFromB: Endpoint;
  srtpAtoB?: DirectionKeys;
  srtpBtoA?: DirectionKeys;
}

export class CallSetupError extends Error {
  override readonly name = 'CallSetupError';
}

export interface CallOptions {
  tagBase: string;
  plan: PhonePlan;
  record?: boolean;
  srtp?: SrtpPlan | null;
}

/** The phone's SDP: one PCMA-capable audio stream, SDES a=crypto when it is an SRTP phone. */
function phoneSdp(at: Endpoint, sessionId: number, key: SdesKey | null): string {
  return buildSdp({
    address: at.ip,
    sessionId,
    media: [
      {
        type: 'audio',
        port: at.port,
        proto: key ? 'RTP/SAVP' : 'RTP/AVP',
        direction: 'sendrecv',
        attributes: key ? [`crypto:${key.tag} ${key.suite} inline:${key.key.toString('base64')}`] : [],
      },
    ],
  });
}

function sdpCryptos(sdp: string): SdesKey[] {
  const out: SdesKey[] = [];
  for (const m of sdp.matchAll(/^a=crypto:(\d+) (\S+) inline:([A-Za-z0-9+/=]+)/gm))
    out.push({ tag: Number(m[1]), suite: m[2] as SrtpSuite, key: Buffer.from(m[3] ?? '', 'base64') });
  return out;
}

function pickCrypto(sdp: string, suite: SrtpSuite, what: string): SdesKey {
  const found = sdpCryptos(sdp).find((c) => c.suite === suite);
  if (!found) throw new CallSetupError(`${what}: no a=crypto line with ${suite} in ${JSON.stringify(sdp).slice(0, 300)}`);
  if (found.key.length !== SRTP_KEY_LENGTH[suite]) throw new CallSetupError(`${what}: ${suite} key of ${found.key.length} bytes`);
  return found;
}

function sdpMedia(sdp: string): Endpoint {
  const m = /^m=audio (\d+) /m.exec(sdp);
  const c = /^c=IN IP[46] (\S+)/m.exec(sdp);
  if (!m || !c) throw new CallSetupError(`reply SDP without m=audio/c= line: ${JSON.stringify(sdp).slice(0, 200)}`);
  return { ip: c[1] ?? '', port: Number(m[1]) };
}

export type Reply = { [key: string]: PlainValue };
const text = (reply: Reply, key: string): string => {
  const v = reply[key];
  return typeof v === 'string' ? v : '';
};

/** Kamailio retransmits after 1 s, three tries. */
const TIMING = { retransmitMs: 1000, deadlineMs: 3500 };

export const callIdOf = (tagBase: string, i: number): string => `${tagBase}-${i}@bench`;

export async function setupCall(ng: NgRawClient, i: number, calls: number, options: CallOptions): Promise<CallLegs> {
  const { plan, srtp = null } = options;
  const a = phoneOf(plan, 'A', i, calls);
  const b = phoneOf(plan, 'B', i, calls);
  const callId = callIdOf(options.tagBase, i);
  const common = { supports: ['load limit'], ICE: 'remove', replace: ['origin', 'session-connection'] };
  const aKey = srtp ? newSdesKey(1, srtp.kind === 'srtp-srtp' ? 'AES_CM_128_HMAC_SHA1_32' : srtp.suite) : null;
  const offer = (
    await ng.request(
      {
        ...common,
        sdp: phoneSdp(a, 1000 + i, aKey),
        ...(srtp?.kind === 'srtp-rtp' ? { 'transport-protocol': 'RTP/AVP' } : {}),
        'call-id': callId,
        'received-from': ['IP4', a.ip],
        'from-tag': `ft${i}`,
        ...(options.record ? { 'record-call': 'yes' } : {}),
        command: 'offer',
      },
      TIMING,
    )
  ).plain;
  if (text(offer, 'result') !== 'ok') throw new CallSetupError(`offer: ${text(offer, 'result')} ${text(offer, 'error-reason')}`);
  const offerSdp = text(offer, 'sdp');
  let bKey: SdesKey | null = null;
  let relayToB: SdesKey | null = null;
  if (srtp?.kind === 'srtp-srtp') {
    relayToB = pickCrypto(offerSdp, srtp.suite, 'offer reply');
    bKey = newSdesKey(relayToB.tag, srtp.suite);
  } else if (srtp && sdpCryptos(offerSdp).length) {
    throw new CallSetupError(`offer reply towards the RTP/AVP leg still carries a=crypto: ${JSON.stringify(offerSdp).slice(0, 300)}`);
  }
  const answer = (
    await ng.request(
      {
        ...common,
        sdp: phoneSdp(b, 2000 + i, bKey),
        'call-id': callId,
        'received-from': ['IP4', b.ip],
        'from-tag': `ft${i}`,
        'to-tag': `tt${i}`,
        command: 'answer',
      },
      TIMING,
    )
  ).plain;
  if (text(answer, 'result') !== 'ok') throw new CallSetupError(`answer: ${text(answer, 'result')} ${text(answer, 'error-reason')}`);
  const answerSdp = text(answer, 'sdp');
  // The offer reply goes to B: B sends there. The answer reply goes to A: A sends there.
  const call: CallLegs = { a, b, toRelayFromA: sdpMedia(answerSdp), toRelayFromB: sdpMedia(offerSdp) };
  if (srtp && aKey) {
    const relayToA = pickCrypto(answerSdp, aKey.suite, 'answer reply');
    call.srtpAtoB = { tx: aKey, rx: relayToB }; // A protects; B unprotects (srtp-srtp) or gets RTP
    call.srtpBtoA = { tx: bKey, rx: relayToA }; // B protects (srtp-srtp) or sends RTP; A unprotects
  }
  return call;
}

/** Sets `calls` calls up, 16 at a time (Kamailio has several workers too). */
export async function setupCalls(ng: NgRawClient, calls: number, options: CallOptions): Promise<CallLegs[]> {
  const out: CallLegs[] = new Array<CallLegs>(calls);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < calls) {
      const i = next++;
      out[i] = await setupCall(ng, i, calls, options);
    }
  };
  await Promise.all(Array.from({ length: Math.min(16, calls) }, worker));
  return out;
}

/** Deletes the calls (a relay the tool did not start keeps running after the run). Best effort. */
export async function deleteCalls(ng: NgRawClient, tagBase: string, calls: number): Promise<void> {
  for (let i = 0; i < calls; i++) {
    try {
      await ng.request({ 'call-id': callIdOf(tagBase, i), 'from-tag': `ft${i}`, command: 'delete' }, TIMING);
    } catch {
      /* the relay may have timed it out already */
    }
  }
}

/** Waits for `pong`; returns null when it came, else why not. `alive` stops early when the relay died. */
export async function waitForPing(ng: NgRawClient, ms: number, alive: () => boolean = () => true): Promise<string | null> {
  const deadline = Date.now() + ms;
  let lastError = 'no reply';
  while (Date.now() < deadline) {
    if (!alive()) return 'exited';
    try {
      const reply = await ng.request({ command: 'ping' }, { retransmitMs: 0, deadlineMs: 300 });
      if (text(reply.plain, 'result') === 'pong') return null;
      lastError = `ping reply ${JSON.stringify(reply.plain)}`;
    } catch (err) {
      lastError = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return `no ng pong within ${ms} ms (${lastError})`;
}

/** ng `query` of one call, as plain values; null when the relay does not know it. */
export async function queryCall(ng: NgRawClient, callId: string): Promise<Reply | null> {
  const reply = (await ng.request({ command: 'query', 'call-id': callId }, TIMING)).plain;
  return text(reply, 'result') === 'ok' ? reply : null;
}

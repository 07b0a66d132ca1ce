/**
 * The SDP helpers of the WebRTC tests (test/support/webrtc-sdp.ts): the browser tests trust them to say
 * where the relay wants media and what leaked to the SIP side, so they are checked on their own.
 */
import { describe, expect, it } from 'vitest';
import { attributeValues, keepLoopbackCandidates, parseMediaLines, plainChoice, plainSdp } from '../support/webrtc-sdp';

const BROWSER_OFFER = [
  'v=0',
  'o=- 1 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0 1',
  'm=audio 45589 UDP/TLS/RTP/SAVPF 111 0 8',
  'c=IN IP4 127.0.0.1',
  'a=candidate:1 1 udp 2122194687 127.0.0.1 45589 typ host generation 0',
  'a=candidate:2 1 udp 2122063615 192.0.2.2 35139 typ host generation 0',
  'a=candidate:3 1 udp 2122267903 ::1 44523 typ host generation 0',
  'a=candidate:4 1 tcp 1518214911 127.0.0.1 9 typ host tcptype active generation 0',
  'a=mid:0',
  'a=rtpmap:111 opus/48000/2',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:8 PCMA/8000',
  'm=video 9 UDP/TLS/RTP/SAVPF 96 97',
  'c=IN IP4 0.0.0.0',
  'a=mid:1',
  'a=rtpmap:96 VP8/90000',
  'a=rtpmap:97 rtx/90000',
  '',
].join('\r\n');

describe('WebRTC test SDP helpers', () => {
  it('keeps only UDP candidates on 127.0.0.1 and every other line as it was', () => {
    const kept = keepLoopbackCandidates(BROWSER_OFFER);
    expect(kept.split('\r\n').filter((l) => l.startsWith('a=candidate:'))).toEqual([
      'a=candidate:1 1 udp 2122194687 127.0.0.1 45589 typ host generation 0',
    ]);
    expect(kept.split('\r\n').filter((l) => !l.startsWith('a=candidate:'))).toEqual(
      BROWSER_OFFER.split('\r\n').filter((l) => !l.startsWith('a=candidate:')),
    );
  });

  it('reads each m= line with its own c= address, payload types, rtpmaps and attributes', () => {
    const [audio, video] = parseMediaLines(BROWSER_OFFER);
    expect(audio).toMatchObject({ kind: 'audio', port: 45589, proto: 'UDP/TLS/RTP/SAVPF', address: '127.0.0.1', payloadTypes: [111, 0, 8] });
    expect(video).toMatchObject({ kind: 'video', port: 9, address: '0.0.0.0', payloadTypes: [96, 97] });
    expect(attributeValues(audio!, 'mid')).toEqual(['0']);
    expect(attributeValues(audio!, 'candidate')).toHaveLength(4);
    expect(attributeValues(video!, 'candidate')).toEqual([]);
  });

  it('falls back to the session c= address', () => {
    const [m] = parseMediaLines(plainSdp('127.0.0.2', [{ kind: 'audio', port: 4000, payloadType: 0, encoding: 'PCMU/8000' }]));
    expect(m).toMatchObject({ address: '127.0.0.2', port: 4000, proto: 'RTP/AVP', payloadTypes: [0] });
  });

  it('picks PCMU for audio and VP8 for video, and says which line lacks them', () => {
    const [audio, video] = parseMediaLines(BROWSER_OFFER);
    expect(plainChoice(audio!)).toEqual({ payloadType: 0, encoding: 'PCMU/8000' });
    expect(plainChoice(video!)).toEqual({ payloadType: 96, encoding: 'VP8/90000' });
    const [opusOnly] = parseMediaLines(BROWSER_OFFER.replace('111 0 8', '111'));
    expect(() => plainChoice(opusOnly!)).toThrow(/no PCMU\/8000/);
  });
});

/** A RelayConfig and SignalRequest for CallManager unit tests, each test overriding only what it is about. */
import type { SignalRequest } from '../../src/call/signal';
import type { RelayConfig } from '../../src/config/types';

export function testConfig(over: Partial<RelayConfig> = {}): RelayConfig {
  return {
    interfaces: [{ name: 'default', address: '127.0.0.1', advertised: '127.0.0.1', family: 'IPv4' }],
    listenNg: { address: '127.0.0.1', port: 0 },
    portMin: 30000,
    portMax: 30099,
    timeout: 60,
    silentTimeout: 3600,
    offerTimeout: 3600,
    finalTimeout: 0,
    deleteDelay: 0,
    numThreads: 1,
    logLevel: 6,
    recordingDir: null,
    recordingMethod: 'pcap',
    recordingFormat: 'raw',
    recordEgress: false,
    stateDir: null,
    stateFsync: false,
    foreground: true,
    logStderr: true,
    logTimestamps: true,
    table: -1,
    pidfile: null,
    endpointLearning: 'heuristic',
    socketReceiveBuffer: 1 << 20,
    debugNgDelayMs: 0,
    ngCacheMaxEntries: 100_000,
    ngCacheMaxBytes: 64 << 20,
    listenCli: null,
    listenTcpNg: null,
    listenHttp: null,
    listenHttps: null,
    httpsCert: null,
    httpsKey: null,
    limits: { maxSessions: -1, maxLoad: 0, maxCpu: 0, maxBandwidth: 0 },
    scheduling: { policy: 'default', priority: null },
    idleScheduling: { policy: 'default', priority: null },
    ...over,
  };
}

export function audioSdp(port: number, addr = '192.168.1.10', extraMedia: string[] = []): Buffer {
  return Buffer.from(
    ['v=0', `o=- 1 1 IN IP4 ${addr}`, 's=-', `c=IN IP4 ${addr}`, 't=0 0', `m=audio ${port} RTP/AVP 0`, ...extraMedia, ''].join('\r\n'),
  );
}

export function signalRequest(over: Partial<SignalRequest>): SignalRequest {
  return {
    callId: 'call-1',
    fromTag: 'A',
    toTag: null,
    viaBranch: null,
    sdp: audioSdp(40000),
    flags: new Set(),
    replace: new Set(),
    rtcpMux: new Set(),
    ice: null,
    transportProtocol: null,
    direction: [],
    receivedFrom: null,
    mediaAddress: null,
    addressFamily: null,
    label: null,
    metadata: null,
    recordCall: null,
    endpointLearning: null,
    ...over,
  };
}

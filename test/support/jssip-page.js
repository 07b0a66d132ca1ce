// Runs inside headless Chromium next to JsSIP (window.JsSIP) and webrtc-page.js (ngrSummarize): a SIP phone
// in the browser that registers over ws://, calls, auto-answers, hangs up. Driven by
// test/support/jssip-phone.ts with JSON arguments only.
'use strict';

/**
 * Keeps only UDP candidates on 127.0.0.1 (every packet of the test stays on loopback; the relays listen
 * there only) and puts PCMU first on the m=audio line (the SIP side speaks G.711).
 */
function ngrLoopbackPcmu(sdp) {
  const out = [];
  for (const line of sdp.split('\r\n')) {
    if (line.startsWith('a=candidate:') && !/ udp \d+ 127\.0\.0\.1 \d+ typ /i.test(line)) continue;
    const m = /^m=audio (\d+) (\S+) (.*)$/.exec(line);
    if (m) {
      const pts = m[3].split(' ');
      if (pts.includes('0')) {
        out.push(`m=audio ${m[1]} ${m[2]} ${['0', ...pts.filter((p) => p !== '0')].join(' ')}`);
        continue;
      }
    }
    out.push(line);
  }
  return out.join('\r\n');
}

const NGR_CALL_OPTIONS = {
  mediaConstraints: { audio: true, video: false },
  pcConfig: { iceServers: [], rtcpMuxPolicy: 'require', bundlePolicy: 'balanced' },
};

window.sipPhone = {
  ua: null,
  session: null,
  events: [],

  log(what) {
    this.events.push(`${new Date().toISOString()} ${what}`);
  },

  /** Registers `uri` over `wsUrl`; resolves when the registrar said 200, rejects on failure or after 10 s. */
  register(options) {
    const socket = new JsSIP.WebSocketInterface(options.wsUrl);
    this.ua = new JsSIP.UA({
      sockets: [socket],
      uri: options.uri,
      register: true,
      register_expires: 300,
      session_timers: false,
      connection_recovery_min_interval: 1,
      connection_recovery_max_interval: 2,
    });
    this.ua.on('newRTCSession', (e) => this.onSession(e));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no REGISTER answer within 10 s')), 10000);
      this.ua.on('registered', () => {
        clearTimeout(timer);
        this.log('registered');
        resolve(true);
      });
      this.ua.on('registrationFailed', (e) => {
        clearTimeout(timer);
        reject(new Error(`registration failed: ${e.cause}`));
      });
      this.ua.start();
    });
  },

  onSession(e) {
    const session = e.session;
    this.session = session;
    this.log(`session ${e.originator}`);
    session.on('sdp', (ev) => {
      if (ev.originator === 'local') ev.sdp = ngrLoopbackPcmu(ev.sdp);
    });
    session.on('confirmed', () => this.log('confirmed'));
    session.on('ended', (ev) => this.log(`ended ${ev.originator} ${ev.cause}`));
    session.on('failed', (ev) => this.log(`failed ${ev.originator} ${ev.cause}`));
    // Auto-answer: a call from a SIP phone is taken at once.
    if (e.originator === 'remote') session.answer(NGR_CALL_OPTIONS);
  },

  /** Calls `target`; resolves once the call is confirmed (200 + ACK), rejects if it fails or after 10 s. */
  call(target) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`call not confirmed within 10 s: ${this.events.join('; ')}`)), 10000);
      const session = this.ua.call(target, {
        ...NGR_CALL_OPTIONS,
        eventHandlers: {
          confirmed: () => {
            clearTimeout(timer);
            resolve(true);
          },
          failed: (ev) => {
            clearTimeout(timer);
            reject(new Error(`call failed: ${ev.cause}; ${this.events.join('; ')}`));
          },
        },
      });
      this.session = session;
    });
  },

  /** getStats() of the current call's peer connection (ngrSummarize in webrtc-page.js). */
  async stats() {
    if (!this.session || !this.session.connection) return null;
    return ngrSummarize(this.session.connection);
  },

  /** 'none', or the session's state: 'confirmed', 'ended', ... */
  state() {
    if (!this.session) return 'none';
    if (this.session.isEnded()) return 'ended';
    if (this.session.isEstablished()) return 'confirmed';
    return 'progress';
  },

  hangUp() {
    if (this.session && !this.session.isEnded()) this.session.terminate();
    return true;
  },

  stop() {
    if (this.ua) this.ua.stop();
    return true;
  },
};

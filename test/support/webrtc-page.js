// Runs inside headless Chromium (served by test/support/page-server.ts, driven by test/support/browser.ts).
// Plain browser JavaScript on purpose: the test side calls these functions by name with JSON arguments, so
// nothing compiled for Node is ever shipped into the page.
'use strict';

/** Waits until ICE gathering is complete (or 5 s: a loopback gather takes a few ms), so the SDP has candidates. */
function ngrGatheringDone(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 5000);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

/** PCMU first (the SIP side speaks G.711), the browser's other audio codecs after it. */
function ngrPreferPcmu(transceiver) {
  const codecs = RTCRtpReceiver.getCapabilities('audio').codecs;
  const pcmu = codecs.filter((c) => c.mimeType.toLowerCase() === 'audio/pcmu');
  const rest = codecs.filter((c) => c.mimeType.toLowerCase() !== 'audio/pcmu');
  transceiver.setCodecPreferences([...pcmu, ...rest]);
}

window.ngr = {
  pc: null,
  media: null,

  /** A peer connection with the fake microphone (and camera when `video`), before any offer/answer. */
  async open(options) {
    const constraints = { audio: true, video: Boolean(options.video) };
    this.media = await navigator.mediaDevices.getUserMedia(constraints);
    this.pc = new RTCPeerConnection({
      iceServers: [],
      bundlePolicy: options.bundlePolicy || 'balanced',
      rtcpMuxPolicy: 'require',
    });
    return true;
  },

  /** Adds the tracks as sendrecv transceivers (the offerer's side), PCMU preferred. */
  addTracks() {
    for (const track of this.media.getTracks()) {
      const transceiver = this.pc.addTransceiver(track, { direction: 'sendrecv', streams: [this.media] });
      if (track.kind === 'audio') ngrPreferPcmu(transceiver);
    }
  },

  async offer() {
    this.addTracks();
    await this.pc.setLocalDescription(await this.pc.createOffer());
    await ngrGatheringDone(this.pc);
    return this.pc.localDescription.sdp;
  },

  async acceptAnswer(sdp) {
    await this.pc.setRemoteDescription({ type: 'answer', sdp });
    return true;
  },

  /** The answerer's side: take the relay's offer, send our tracks on the offered m= lines, answer. */
  async answer(sdp) {
    await this.pc.setRemoteDescription({ type: 'offer', sdp });
    for (const transceiver of this.pc.getTransceivers()) {
      const kind = transceiver.receiver.track.kind;
      const track = this.media.getTracks().find((t) => t.kind === kind);
      if (track) {
        await transceiver.sender.replaceTrack(track);
        transceiver.direction = 'sendrecv';
        if (kind === 'audio') ngrPreferPcmu(transceiver);
      }
    }
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    await ngrGatheringDone(this.pc);
    return this.pc.localDescription.sdp;
  },

  /** The figures the tests judge by, from getStats(): per transport ICE/DTLS, per kind RTP in and out. */
  async stats() {
    return ngrSummarize(this.pc);
  },

  close() {
    if (this.pc) this.pc.close();
    if (this.media) for (const track of this.media.getTracks()) track.stop();
    return true;
  },
};

/** Shared with the JsSIP page: summarises any RTCPeerConnection's getStats(). */
async function ngrSummarize(pc) {
  const report = await pc.getStats();
  const transports = [];
  const inbound = {};
  const outbound = {};
  const pairs = {};
  report.forEach((s) => {
    if (s.type === 'candidate-pair') pairs[s.id] = s;
  });
  report.forEach((s) => {
    if (s.type === 'transport') {
      const pair = s.selectedCandidatePairId ? pairs[s.selectedCandidatePairId] : undefined;
      transports.push({
        id: s.id,
        dtlsState: s.dtlsState,
        iceState: s.iceState,
        dtlsRole: s.dtlsRole,
        srtpCipher: s.srtpCipher,
        selectedPairState: pair ? pair.state : undefined,
        selectedPairNominated: pair ? Boolean(pair.nominated) : undefined,
      });
    } else if (s.type === 'inbound-rtp') {
      inbound[s.kind] = (inbound[s.kind] || 0) + (s.packetsReceived || 0);
    } else if (s.type === 'outbound-rtp') {
      outbound[s.kind] = (outbound[s.kind] || 0) + (s.packetsSent || 0);
    }
  });
  return {
    connectionState: pc.connectionState,
    iceConnectionState: pc.iceConnectionState,
    transports,
    inbound,
    outbound,
  };
}

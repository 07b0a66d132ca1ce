/**
 * Headless Chromium (Debian's `chromium`, driven by puppeteer-core over a pipe; nothing downloaded) for the
 * WebRTC tests: launch with a fresh profile directory, open pages from test/support/page-server.ts, run an
 * RTCPeerConnection in them (test/support/webrtc-page.js) and read its getStats(). Closed by its PID, the
 * profile directory removed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import puppeteer, { Browser, Page } from 'puppeteer-core';
import { PageServer, startPageServer } from './page-server';

export const CHROMIUM_BIN = '/usr/bin/chromium';

/**
 * Why each switch: headless and root-safe (--no-sandbox), no GPU, no traffic of its own to Google
 * (background networking, component updates, sync, QUIC), fake camera/microphone granted without a prompt,
 * and host candidates on 127.0.0.1 (Chromium leaves loopback out of ICE unless told), so every media
 * packet stays on loopback.
 */
export const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
];

export interface TransportStats {
  id: string;
  dtlsState?: string;
  iceState?: string;
  dtlsRole?: string;
  srtpCipher?: string;
  selectedPairState?: string;
  selectedPairNominated?: boolean;
}

/** What webrtc-page.js's ngrSummarize() returns. */
export interface PeerStats {
  connectionState: string;
  iceConnectionState: string;
  transports: TransportStats[];
  /** RTP packets received, per media kind ("audio", "video"). */
  inbound: Record<string, number>;
  /** RTP packets sent, per media kind. */
  outbound: Record<string, number>;
}

export interface PeerOptions {
  video?: boolean;
  bundlePolicy?: 'balanced' | 'max-bundle' | 'max-compat';
}

/** One RTCPeerConnection in its own page. Every call crosses into the page with JSON arguments only. */
export class BrowserPeer {
  constructor(readonly page: Page) {}

  private call<T>(method: string, ...args: unknown[]): Promise<T> {
    const list = args.map((a) => JSON.stringify(a)).join(', ');
    return this.page.evaluate(`window.ngr.${method}(${list})`) as Promise<T>;
  }

  /** The browser's offer, after ICE gathering finished (candidates included). */
  offer(): Promise<string> {
    return this.call<string>('offer');
  }

  async acceptAnswer(sdp: string): Promise<void> {
    await this.call<boolean>('acceptAnswer', sdp);
  }

  /** Answers the relay's offer with the page's tracks; returns the answer SDP with candidates. */
  answer(sdp: string): Promise<string> {
    return this.call<string>('answer', sdp);
  }

  stats(): Promise<PeerStats> {
    return this.call<PeerStats>('stats');
  }

  async close(): Promise<void> {
    if (this.page.isClosed()) return;
    await this.call<boolean>('close').catch(() => undefined);
    await this.page.close().catch(() => undefined);
  }
}

export class Chromium {
  private constructor(
    readonly browser: Browser,
    readonly pid: number,
    private readonly profileDir: string,
    readonly pages: PageServer,
    /** What the page printed to its console, for failure messages. */
    readonly consoleLines: string[],
  ) {}

  static async launch(): Promise<Chromium> {
    const profileDir = mkdtempSync(path.join(os.tmpdir(), 'ngr-chromium-'));
    const pages = await startPageServer();
    let browser: Browser | undefined;
    try {
      browser = await puppeteer.launch({
        executablePath: CHROMIUM_BIN,
        headless: true,
        pipe: true,
        userDataDir: profileDir,
        args: CHROMIUM_ARGS,
        // The test stops it (by PID) in afterAll; vitest's own signals must not race that.
        handleSIGINT: false,
        handleSIGTERM: false,
        handleSIGHUP: false,
        timeout: 30_000,
        protocolTimeout: 20_000,
      });
      const pid = browser.process()?.pid;
      if (pid === undefined) throw new Error('puppeteer launched chromium but reports no PID');
      return new Chromium(browser, pid, profileDir, pages, []);
    } catch (err) {
      await browser?.close().catch(() => undefined);
      await pages.close();
      rmSync(profileDir, { recursive: true, force: true });
      throw err;
    }
  }

  /** A page with an RTCPeerConnection opened (fake microphone, and camera when asked). */
  async peer(options: PeerOptions = {}): Promise<BrowserPeer> {
    const page = await this.openPage('/webrtc.html');
    await page.evaluate(`window.ngr.open(${JSON.stringify(options)})`);
    return new BrowserPeer(page);
  }

  async openPage(pagePath: string): Promise<Page> {
    const page = await this.browser.newPage();
    page.on('console', (msg) => this.keepConsole(`${msg.type()}: ${msg.text()}`));
    page.on('pageerror', (err) => this.keepConsole(`pageerror: ${String(err)}`));
    await page.goto(`${this.pages.origin}${pagePath}`, { waitUntil: 'load' });
    return page;
  }

  private keepConsole(line: string): void {
    this.consoleLines.push(line);
    if (this.consoleLines.length > 200) this.consoleLines.shift();
  }

  /** Closes the browser, SIGKILLs its PID if it has not gone within 5 s, removes the profile directory. */
  async close(): Promise<void> {
    const exited = new Promise<void>((resolve) => {
      const child = this.browser.process();
      if (!child || child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 5000).unref());
    await Promise.race([this.browser.close().catch(() => undefined), timer]);
    if ((await Promise.race([exited, timer])) === 'timeout') {
      try {
        process.kill(this.pid, 'SIGKILL');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
      await exited;
    }
    await this.pages.close();
    rmSync(this.profileDir, { recursive: true, force: true });
  }
}

/** Polls the peer's stats until `done` holds; on timeout throws with the last stats seen. */
export async function waitForStats(
  peer: BrowserPeer,
  what: string,
  done: (stats: PeerStats) => boolean,
  timeoutMs: number,
): Promise<PeerStats> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stats = await peer.stats();
    if (done(stats)) return stats;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms; browser stats: ${JSON.stringify(stats)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * A SIP phone in headless Chromium: JsSIP (npm `jssip`, bundled by page-server.ts) on the page
 * /jssip.html, driven through test/support/jssip-page.js. Registers over ws://, calls, auto-answers.
 */
import type { Page } from 'puppeteer-core';
import { Chromium, PeerStats } from './browser';

export class JssipPhone {
  private constructor(private readonly page: Page) {}

  static async open(chromium: Chromium): Promise<JssipPhone> {
    return new JssipPhone(await chromium.openPage('/jssip.html'));
  }

  private call<T>(method: string, ...args: unknown[]): Promise<T> {
    const list = args.map((a) => JSON.stringify(a)).join(', ');
    return this.page.evaluate(`window.sipPhone.${method}(${list})`) as Promise<T>;
  }

  async register(wsUrl: string, uri: string): Promise<void> {
    await this.call<boolean>('register', { wsUrl, uri });
  }

  /** Resolves once the call is confirmed. */
  async dial(target: string): Promise<void> {
    await this.call<boolean>('call', target);
  }

  /** getStats() of the current call, or null before there is one. */
  stats(): Promise<PeerStats | null> {
    return this.call<PeerStats | null>('stats');
  }

  state(): Promise<'none' | 'progress' | 'confirmed' | 'ended'> {
    return this.call('state');
  }

  /** What the page's SIP session did, for failure messages. */
  events(): Promise<string[]> {
    return this.page.evaluate('window.sipPhone.events') as Promise<string[]>;
  }

  async hangUp(): Promise<void> {
    await this.call<boolean>('hangUp');
  }

  async close(): Promise<void> {
    if (this.page.isClosed()) return;
    await this.call<boolean>('stop').catch(() => undefined);
    await this.page.close().catch(() => undefined);
  }
}

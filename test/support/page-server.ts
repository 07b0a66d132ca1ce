/**
 * The pages headless Chromium loads, served over http on 127.0.0.1 (an http://127.0.0.1 origin is a secure
 * context, so getUserMedia and RTCPeerConnection work; no CDN, nothing fetched from outside). Scripts come
 * from this repository (test/support/*-page.js) and JsSIP from node_modules, bundled on first request with
 * esbuild because the npm package ships only CommonJS (lib/), no browser build.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

const SUPPORT_DIR = __dirname;
const JSSIP_ENTRY = path.resolve(SUPPORT_DIR, '..', '..', 'node_modules', 'jssip', 'lib', 'JsSIP.js');

/** Page name -> the scripts it loads, in order. */
const PAGES: Record<string, string[]> = {
  '/webrtc.html': ['/webrtc-page.js'],
  '/jssip.html': ['/webrtc-page.js', '/jssip.js', '/jssip-page.js'],
};

let jssipBundle: Promise<string> | undefined;

/** JsSIP as one browser script defining `window.JsSIP` (built once per test process, in memory). */
function jssipScript(): Promise<string> {
  jssipBundle ??= build({
    entryPoints: [JSSIP_ENTRY],
    bundle: true,
    format: 'iife',
    globalName: 'JsSIP',
    platform: 'browser',
    write: false,
    logLevel: 'silent',
  }).then((result) => {
    const file = result.outputFiles[0];
    if (!file) throw new Error(`esbuild produced no output for ${JSSIP_ENTRY}`);
    return file.text;
  });
  return jssipBundle;
}

async function body(urlPath: string): Promise<{ type: string; text: string } | undefined> {
  const scripts = PAGES[urlPath];
  if (scripts) {
    const tags = scripts.map((src) => `<script src="${src}"></script>`).join('\n');
    return { type: 'text/html', text: `<!doctype html>\n<html><head><meta charset="utf-8">\n${tags}\n</head><body></body></html>\n` };
  }
  if (urlPath === '/jssip.js') return { type: 'text/javascript', text: await jssipScript() };
  if (urlPath === '/webrtc-page.js' || urlPath === '/jssip-page.js') {
    return { type: 'text/javascript', text: readFileSync(path.join(SUPPORT_DIR, urlPath.slice(1)), 'utf8') };
  }
  return undefined;
}

export interface PageServer {
  /** e.g. http://127.0.0.1:41234 */
  origin: string;
  close(): Promise<void>;
}

export async function startPageServer(): Promise<PageServer> {
  const server = http.createServer((req, res) => {
    const urlPath = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    body(urlPath).then(
      (found) => {
        if (!found) {
          res.writeHead(404, { 'content-type': 'text/plain' }).end(`no such page: ${urlPath}\n`);
          return;
        }
        res.writeHead(200, { 'content-type': `${found.type}; charset=utf-8`, 'cache-control': 'no-store' }).end(found.text);
      },
      (err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(err)}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * The certificate of a DTLS peer played by the openssl command (s_client / s_server in the DTLS tests): an
 * ECDSA P-256 key and self-signed certificate written into `dir`, and its SHA-256 fingerprint (what the
 * peer's a=fingerprint says).
 */
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface OpensslPeerIdentity {
  certFile: string;
  keyFile: string;
  /** "AB:CD:..." as X509Certificate gives it. */
  fingerprint256: string;
}

export function makeOpensslPeerIdentity(dir: string): OpensslPeerIdentity {
  const certFile = path.join(dir, 'peer.pem');
  const keyFile = path.join(dir, 'peer.key');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=peer'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  return { certFile, keyFile, fingerprint256: new X509Certificate(fs.readFileSync(certFile)).fingerprint256 };
}

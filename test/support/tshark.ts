/**
 * tshark as the independent judge of recorded pcaps. Installed when missing (Debian package `tshark`, by
 * scripts/install-debian-packages.sh, which answers the wireshark-common setuid question "no"); a test fails loudly when it
 * cannot be had: it is never skipped.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';

let checked = false;

function hasTshark(): boolean {
  return spawnSync('tshark', ['-v'], { stdio: 'ignore' }).status === 0;
}

/** Makes sure `tshark` runs; installs it when missing (a few retries while another dpkg holds the lock). */
export function ensureTshark(): void {
  if (checked || hasTshark()) {
    checked = true;
    return;
  }
  // The project's one installer of Debian packages (answers the setuid question, waits out a busy dpkg lock).
  const installer = path.resolve(__dirname, '..', '..', 'scripts', 'install-debian-packages.sh');
  const r = spawnSync('bash', [installer, 'tshark'], { encoding: 'utf8', timeout: 600_000 });
  const last = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error?.message ?? ''}`;
  if (!hasTshark()) throw new Error(`tshark is required and could not be installed:\n${last.slice(-2000)}`);
  checked = true;
}

export interface TsharkRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function tshark(args: string[]): TsharkRun {
  ensureTshark();
  // -n: no name resolution; -o gui... none needed. 30 s bound so a hung tshark cannot hang the suite.
  const r = spawnSync('tshark', ['-n', ...args], { encoding: 'utf8', timeout: 30_000 });
  // Running as root, tshark warns about it on stderr; that line says nothing about the file.
  const stderr = (r.stderr ?? '')
    .split('\n')
    .filter((l) => !/^Running as user "root"/.test(l))
    .join('\n');
  return { status: r.status, stdout: r.stdout ?? '', stderr };
}

export interface PcapRow {
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
  /** RTP fields (null for other packets). */
  ssrc: number | null;
  seq: number | null;
  /** RTCP packet type of the first RTCP packet (null for other packets). */
  rtcpType: number | null;
  /** `eth.type` when the file has Ethernet framing. */
  ethType: string | null;
}

/**
 * Every packet of the file with RTP decoding forced on `rtpPorts` and RTCP on `rtcpPorts` (either end).
 * Throws when tshark reports any problem with the file (a torn record, a bad header).
 */
export function readPcap(file: string, rtpPorts: number[], rtcpPorts: number[]): PcapRow[] {
  const decode = [...rtpPorts.flatMap((p) => ['-d', `udp.port==${p},rtp`]), ...rtcpPorts.flatMap((p) => ['-d', `udp.port==${p},rtcp`])];
  const fields = ['ip.src', 'ipv6.src', 'udp.srcport', 'ip.dst', 'ipv6.dst', 'udp.dstport', 'rtp.ssrc', 'rtp.seq', 'rtcp.pt', 'eth.type'];
  const r = tshark(['-r', file, ...decode, '-T', 'fields', '-E', 'separator=/t', '-E', 'occurrence=f', ...fields.flatMap((f) => ['-e', f])]);
  if (r.status !== 0 || r.stderr.trim() !== '') {
    throw new Error(`tshark could not read ${file} cleanly (status ${String(r.status)}):\n${r.stderr}`);
  }
  return r.stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((line) => {
      const [ip4s, ip6s, sp, ip4d, ip6d, dp, ssrc, seq, rtcpPt, eth] = line.split('\t');
      const num = (v: string | undefined): number | null => (v === undefined || v === '' ? null : Number(v));
      return {
        src: ip4s || ip6s || '',
        srcPort: Number(sp),
        dst: ip4d || ip6d || '',
        dstPort: Number(dp),
        ssrc: ssrc ? Number.parseInt(ssrc, 16) : null,
        seq: num(seq),
        rtcpType: num(rtcpPt),
        ethType: eth || null,
      };
    });
}

export interface RtpStreamStat {
  ssrc: number;
  packets: number;
  lost: number;
}

/** tshark's RTP stream analysis (`-z rtp,streams`): per SSRC, packets and lost packets. */
export function rtpStreams(file: string, rtpPorts: number[]): RtpStreamStat[] {
  const decode = rtpPorts.flatMap((p) => ['-d', `udp.port==${p},rtp`]);
  const r = tshark(['-r', file, ...decode, '-q', '-z', 'rtp,streams']);
  if (r.status !== 0 || r.stderr.trim() !== '') throw new Error(`tshark rtp,streams failed on ${file}:\n${r.stderr}`);
  const rows: RtpStreamStat[] = [];
  // Row: src port dst port SSRC payload... Pkts Lost(%) ...; the payload name may contain spaces.
  for (const line of r.stdout.split('\n')) {
    const m = /\s(0x[0-9a-fA-F]+)\s+.*?\s(\d+)\s+(-?\d+)\s+\(-?[\d.]+%\)/.exec(line);
    if (m) rows.push({ ssrc: Number.parseInt(m[1] as string, 16), packets: Number(m[2]), lost: Number(m[3]) });
  }
  return rows;
}

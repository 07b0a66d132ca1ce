/**
 * A pcap file of datagrams a test party received (LINKTYPE_RAW: IPv4 + UDP headers built here), so tshark can
 * judge what arrived exactly as a capture would show it, without capture privileges.
 */
import { writeFileSync } from 'node:fs';

export interface ReceivedDatagram {
  data: Buffer;
  /** Sender and receiver, IPv4 loopback. */
  srcPort: number;
  dstPort: number;
  atMs: number;
}

function ipv4(address: string): Buffer {
  return Buffer.from(address.split('.').map(Number));
}

export function writeReceivedPcap(file: string, packets: readonly ReceivedDatagram[], src = '127.0.0.1', dst = '127.0.0.1'): void {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16);
  header.writeUInt32LE(101, 20); // LINKTYPE_RAW
  const records: Buffer[] = [header];
  for (const p of packets) {
    const ip = Buffer.alloc(28);
    ip[0] = 0x45;
    ip.writeUInt16BE(28 + p.data.length, 2);
    ip[8] = 64;
    ip[9] = 17;
    ipv4(src).copy(ip, 12);
    ipv4(dst).copy(ip, 16);
    let sum = 0;
    for (let i = 0; i < 20; i += 2) sum += ip.readUInt16BE(i);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    ip.writeUInt16BE(~sum & 0xffff, 10);
    ip.writeUInt16BE(p.srcPort, 20);
    ip.writeUInt16BE(p.dstPort, 22);
    ip.writeUInt16BE(8 + p.data.length, 24); // UDP checksum 0 = none
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(Math.floor(p.atMs / 1000), 0);
    rec.writeUInt32LE(Math.floor((p.atMs % 1000) * 1000), 4);
    rec.writeUInt32LE(28 + p.data.length, 8);
    rec.writeUInt32LE(28 + p.data.length, 12);
    records.push(rec, ip, p.data);
  }
  writeFileSync(file, Buffer.concat(records));
}

/**
 * Parsers for single option values. Each returns the typed value or throws `BadValue` with the reason; the
 * caller adds which option (and which file line) it came from.
 */
import { isIP } from 'node:net';
import type { NetworkInterfaceInfo } from 'node:os';
import type { InterfaceConfig } from './types';
import type { Family } from '../dataplane/types';

export class BadValue extends Error {
  override readonly name = 'BadValue';
}

export type NetworkInterfaceMap = NodeJS.Dict<NetworkInterfaceInfo[]>;

/** A decimal integer in [min, max]; no spaces, signs other than '-', or fractions (GLib is as strict). */
export function parseInteger(text: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(text)) throw new BadValue('expected an integer');
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new BadValue(`expected an integer ${min}..${max}`);
  return n;
}

/** Config file booleans as GLib reads them, plus yes/no. */
export function parseBoolean(text: string): boolean {
  switch (text.toLowerCase()) {
    case 'true':
    case '1':
    case 'yes':
      return true;
    case 'false':
    case '0':
    case 'no':
      return false;
    default:
      throw new BadValue('expected true or false');
  }
}

function unbracket(address: string): string {
  return address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
}

function familyOf(address: string): Family | null {
  const v = isIP(address);
  return v === 4 ? 'IPv4' : v === 6 ? 'IPv6' : null;
}

function isUnspecified(address: string): boolean {
  return /^0+(\.0+){3}$/.test(address) || /^[0:]+$/.test(address);
}

/** fe80::/10 needs a scope id to bind, which SDP cannot carry; such device addresses are skipped. */
function isIpv6LinkLocal(address: string): boolean {
  return /^fe[89ab]/i.test(address);
}

/**
 * `[NAME/]IP[!ADVERTISED]`. IP is an IPv4/IPv6 literal (IPv6 optionally in brackets), the name of a
 * network device, which stands for all of the device's addresses (IPv6 link-local ones left out), or `any`
 * for the addresses of all devices but loopback (as rtpengine 10.5 resolves it). The
 * advertised address must be a literal of the same family; with a device it applies to that family's
 * addresses only. Wildcards (0.0.0.0, ::) are refused: media sockets bind concrete addresses.
 */
export function parseInterface(spec: string, networkInterfaces: () => NetworkInterfaceMap): InterfaceConfig[] {
  if (spec === '' || /\s/.test(spec)) throw new BadValue('expected [NAME/]IP[!ADVERTISED]');
  let name = 'default';
  let rest = spec;
  const slash = spec.indexOf('/');
  if (slash >= 0) {
    name = spec.slice(0, slash);
    rest = spec.slice(slash + 1);
    if (name === '') throw new BadValue('empty interface name before "/"');
  }
  let localText = rest;
  let advertisedText: string | null = null;
  const bang = rest.indexOf('!');
  if (bang >= 0) {
    localText = rest.slice(0, bang);
    advertisedText = unbracket(rest.slice(bang + 1));
    if (advertisedText === '') throw new BadValue('empty advertised address after "!"');
  }
  localText = unbracket(localText);
  if (localText === '') throw new BadValue('missing local address');

  let advertisedFamily: Family | null = null;
  if (advertisedText !== null) {
    advertisedFamily = familyOf(advertisedText);
    if (advertisedFamily === null) throw new BadValue(`advertised address '${advertisedText}' is not an IP address`);
    if (isUnspecified(advertisedText)) throw new BadValue(`advertised address '${advertisedText}' is a wildcard`);
  }

  const family = familyOf(localText);
  if (family !== null) {
    if (isUnspecified(localText)) {
      throw new BadValue(`'${localText}' is a wildcard; give a concrete local address`);
    }
    if (advertisedFamily !== null && advertisedFamily !== family) {
      throw new BadValue(`advertised address '${advertisedText}' is not ${family} like '${localText}'`);
    }
    return [{ name, address: localText, advertised: advertisedText ?? localText, family }];
  }

  const devices = networkInterfaces();
  let device = devices[localText];
  // rtpengine's `any`: every address of every device but loopback (a device really named "any" wins).
  if (device === undefined && localText === 'any') {
    device = Object.values(devices).flatMap((infos) => (infos ?? []).filter((info) => !info.internal));
    if (device.length === 0) throw new BadValue("'any': the machine has no address besides loopback");
  }
  if (device === undefined) throw new BadValue(`'${localText}' is neither an IP address nor a network device`);
  const result: InterfaceConfig[] = [];
  for (const info of device) {
    const fam: Family = info.family === 'IPv6' ? 'IPv6' : 'IPv4';
    if (fam === 'IPv6' && isIpv6LinkLocal(info.address)) continue;
    const advertised = advertisedText !== null && advertisedFamily === fam ? advertisedText : info.address;
    result.push({ name, address: info.address, advertised, family: fam });
  }
  if (result.length === 0) throw new BadValue(`network device '${localText}' has no usable address`);
  if (advertisedFamily !== null && !result.some((r) => r.family === advertisedFamily)) {
    throw new BadValue(`network device '${localText}' has no ${advertisedFamily} address for '${advertisedText}'`);
  }
  return result;
}

/**
 * `[IP:]PORT` as rtpengine's `--listen-ng`: `IP:PORT`, `[IPv6]:PORT`, `IPv6:PORT` (split at the last ':'),
 * `localhost:PORT` (127.0.0.1), or a bare PORT, which like rtpengine means every IPv4 address (0.0.0.0).
 */
export function parseListenAddress(text: string): { address: string; port: number } {
  let host: string;
  let portText: string;
  const bracketed = /^\[([^\]]+)\]:(.*)$/.exec(text);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2]!;
    if (isIP(host) !== 6) throw new BadValue(`'${host}' is not an IPv6 address`);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) {
      host = '0.0.0.0';
      portText = text;
    } else {
      host = text.slice(0, colon);
      portText = text.slice(colon + 1);
      if (host === 'localhost') host = '127.0.0.1';
      if (isIP(host) === 0) throw new BadValue(`'${host}' is not an IP address (host names are not resolved)`);
    }
  }
  if (!/^\d+$/.test(portText)) throw new BadValue('expected [IP:]PORT');
  const port = Number(portText);
  if (port < 1 || port > 65535) throw new BadValue(`port ${portText} is outside 1..65535`);
  return { address: host, port };
}

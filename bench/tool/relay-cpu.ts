/**
 * The relay's CPU time when the tool cannot read /proc/<pid>: from its Prometheus `/metrics`.
 * `process_cpu_seconds_total` (the standard process metric) when served; else ngrelay's
 * `ngrelay_io_thread_cpu_seconds_total` summed over its I/O threads (the forwarding part of the process);
 * rtpengine 10.5's /metrics has neither (only sessions, packets, bytes, ports), so its CPU is "n/a".
 */
import http from 'node:http';
import type { CpuSourceKind } from './types';

export class MetricsScrapeError extends Error {
  override readonly name = 'MetricsScrapeError';
}

export interface CpuReading {
  seconds: number;
  source: Exclude<CpuSourceKind, 'proc' | 'none'>;
}

/** Sum of every sample of `metric` (any labels) in Prometheus text format; null when absent. */
export function sumMetric(body: string, metric: string): number | null {
  let sum: number | null = null;
  for (const line of body.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== metric) continue;
    const value = Number(m[3]);
    if (Number.isFinite(value)) sum = (sum ?? 0) + value;
  }
  return sum;
}

/** The CPU figure a /metrics body offers, or null when it has none. */
export function cpuFromMetrics(body: string): CpuReading | null {
  const process = sumMetric(body, 'process_cpu_seconds_total');
  if (process !== null) return { seconds: process, source: 'metrics' };
  const ioThreads = sumMetric(body, 'ngrelay_io_thread_cpu_seconds_total');
  if (ioThreads !== null) return { seconds: ioThreads, source: 'metrics-io-threads' };
  return null;
}

export function fetchText(url: string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new MetricsScrapeError(`GET ${url}: HTTP ${res.statusCode}`));
        else resolve(body);
      });
    });
    req.on('timeout', () => req.destroy(new MetricsScrapeError(`GET ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => reject(err instanceof MetricsScrapeError ? err : new MetricsScrapeError(`GET ${url}: ${err.message}`)));
  });
}

export async function scrapeCpu(url: string): Promise<CpuReading | null> {
  return cpuFromMetrics(await fetchText(url));
}

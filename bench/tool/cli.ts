/**
 * `ngrelay-bench`: the packet-path benchmark as a tool. Starts relays (ngrelay, rtpengine, minfwd, the
 * recording/SRTP rows; pinned) or points at one already running (--ng=...), steps the offered rate with
 * bench/bin/loadgen, and writes the results (JSON), a self-contained HTML report with charts, an SVG of
 * the charts and the markdown report (also printed on stdout). See bench/README.md.
 *
 * Safety: every loadgen run is bounded in packets and seconds; only the PIDs this tool started are ever
 * signalled, also on Ctrl-C and on errors.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { FORWARDERS, ForwarderDef } from './forwarders';
import { checkCompareName, CompareError, compareRuns, outsideNoise } from './noise';
import { pinSelf } from './machine';
import { BenchOptions, BenchUsageError, parseOptions, USAGE } from './options';
import { BENCH_DIR, DEFAULT_OUT, LOADGEN, MINFWD, ROOT } from './paths';
import { installExitHandlers, killAllChildren } from './processes';
import { renderSvg } from './report-charts';
import { renderHtml } from './report-html';
import { renderMarkdown } from './report-md';
import { readResults, ResultsFileError } from './results-file';
import { runBench } from './runner';
import type { BenchResults } from './types';

/** Builds loadgen, minfwd (and the softirq meter where clang + libbpf-dev exist) when a source is newer than the binaries (bench/build.sh). */
function buildTools(): void {
  const sources = ['loadgen.c', 'minfwd.c', 'softirq-meter.c', 'softirq-meter.bpf.c', 'build.sh'].map((f) => path.join(BENCH_DIR, f));
  const newest = Math.max(...sources.map((f) => fs.statSync(f).mtimeMs));
  if ([LOADGEN, MINFWD].every((b) => fs.existsSync(b) && fs.statSync(b).mtimeMs >= newest)) return;
  process.stderr.write('ngrelay-bench: building C tools (bench/build.sh)\n');
  execFileSync('sh', [path.join(BENCH_DIR, 'build.sh')], { stdio: ['ignore', 2, 2] });
}

/** Installs missing Debian packages with the project's one installer; returns why it failed, or null. */
export function installDebianPackages(packages: string[]): string | null {
  const r = spawnSync('bash', [path.join(ROOT, 'scripts', 'install-debian-packages.sh'), ...packages], { encoding: 'utf8', timeout: 900_000 });
  return r.status === 0 ? null : `${r.stdout ?? ''}${r.stderr ?? ''}${r.error?.message ?? ''}`.trim().split('\n').slice(-2).join(' ');
}

/** Writes results-<stamp>.{json,html,svg} and latest.{md,html,svg}; returns the paths. */
export function writeReports(res: BenchResults, outDir: string): { json: string; html: string; svg: string; md: string } {
  fs.mkdirSync(outDir, { recursive: true });
  const stamp = res.info.date.replace(/[:.]/g, '-');
  const json = path.join(outDir, `results-${stamp}.json`);
  // Raw results first: a report bug must not lose a 10-minute run (re-render with --report=FILE).
  fs.writeFileSync(json, JSON.stringify(res, null, 2));
  const md = renderMarkdown(res);
  const html = renderHtml(res);
  const svg = renderSvg(res);
  const files = { json, html: path.join(outDir, `report-${stamp}.html`), svg: path.join(outDir, `charts-${stamp}.svg`), md: path.join(outDir, 'latest.md') };
  fs.writeFileSync(files.html, html);
  fs.writeFileSync(files.svg, svg);
  fs.writeFileSync(files.md, md);
  fs.writeFileSync(path.join(outDir, 'latest.html'), html);
  fs.writeFileSync(path.join(outDir, 'latest.svg'), svg);
  return files;
}

/** Exit code of a run whose comparison (--compare-with) found a figure outside the noise. */
export const EXIT_OUTSIDE_NOISE = 3;

/** --compare-with: adds the comparison to the results; returns the exit code it asks for. */
function compare(res: BenchResults, o: BenchOptions, other: BenchResults | null): number {
  if (!other || !o.compareWith) return 0;
  res.comparison = compareRuns(res, other, o.compareWith, o.compareName);
  const outside = outsideNoise(res.comparison);
  if (outside.length) process.stderr.write(`ngrelay-bench: ${outside.length} figure(s) outside the noise of ${o.compareWith} (see the report's comparison)\n`);
  return outside.length ? EXIT_OUTSIDE_NOISE : 0;
}

async function run(o: BenchOptions): Promise<number> {
  const outDir = path.resolve(o.outDir ?? DEFAULT_OUT);
  // Read before running: a wrong file must not cost a run.
  const other = o.compareWith ? readResults(o.compareWith) : null;
  if (o.report) {
    const res = readResults(o.report);
    const code = compare(res, o, other);
    const files = writeReports(res, outDir);
    process.stdout.write(renderMarkdown(res));
    process.stderr.write(`ngrelay-bench: report ${files.html}, charts ${files.svg}\n`);
    return code;
  }
  if (other) checkCompareName(other, o.compareWith as string, o.compareName);
  fs.mkdirSync(outDir, { recursive: true });
  installExitHandlers();
  buildTools();
  pinSelf();
  const extraNotes: string[] = [];
  if (o.forwarders.some((f) => (FORWARDERS[f] as ForwarderDef).kind === 'rtpengine') && !fs.existsSync('/usr/bin/rtpengine')) {
    const err = installDebianPackages(['rtpengine-daemon']);
    if (err) {
      extraNotes.push(`rtpengine: not available (${err})`);
      o.forwarders = o.forwarders.filter((f) => (FORWARDERS[f] as ForwarderDef).kind !== 'rtpengine');
    }
  }
  const res = await runBench(o, outDir);
  res.notes.push(...extraNotes);
  const code = compare(res, o, other);
  const files = writeReports(res, outDir);
  process.stdout.write(renderMarkdown(res));
  process.stderr.write(`ngrelay-bench: results ${files.json}\nngrelay-bench: report ${files.html}\nngrelay-bench: charts ${files.svg}\n`);
  return code;
}

export async function main(argv: string[]): Promise<number> {
  let options: BenchOptions | 'help';
  try {
    options = parseOptions(argv);
  } catch (err) {
    if (err instanceof BenchUsageError) {
      process.stderr.write(`ngrelay-bench: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  try {
    return await run(options);
  } catch (err) {
    if (err instanceof ResultsFileError || err instanceof CompareError) {
      process.stderr.write(`ngrelay-bench: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`ngrelay-bench: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  } finally {
    killAllChildren();
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => process.exit(code));
}

/**
 * Compatibility: the same ng request sequences go to rtpengine 10.5 (the reference) and to ngrelay (the
 * candidate). Rewritten SDPs must carry the same lines in the same order (allocated ports and session ids
 * normalised), and reply dicts the same keys and value types, recursively, plus equal values where the
 * meaning is fixed (result, error-reason, warning, tags, addresses, which allocated port is which).
 *
 * COMPAT_CANDIDATE=rtpengine runs a second rtpengine as the candidate: a check of the harness itself
 * (everything must pass then). COMPAT_DUMP=1 prints rtpengine's replies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BDict } from '../support/bencode';
import { diffLines, normalizeSdp, PortNamer, shapeDiff, ShapeOptions } from '../support/compare';
import { NgRawClient, textOf } from '../support/ng-client';
import { startNgrelay } from '../support/ngrelay';
import { RelayOptions, RelayUnderTest } from '../support/relay';
import { startRtpengine } from '../support/rtpengine';
import { Scenario, scenarios, Step, TraceEntry } from './scenarios';

// Ports below the kernel's ephemeral range (32768+) and outside rtpengine's default 30000-40000, which other
// relays on this machine (benchmarks) use: a stray packet there would change query stats mid-test.
const REFERENCE: RelayOptions = { ngPort: 22302, portMin: 24000, portMax: 24999 };
const CANDIDATE: RelayOptions = { ngPort: 22303, portMin: 25000, portMax: 25999 };
const candidateKind = process.env.COMPAT_CANDIDATE === 'rtpengine' ? 'rtpengine' : 'ngrelay';

/** Values that mean the same thing on both relays (everything else is compared by type only). */
const EQUAL_VALUE_KEYS = new Set([
  'result',
  'error-reason',
  'warning',
  'tag',
  'type',
  'index',
  'protocol',
  'family',
  'address',
  'local address',
  'in dialogue with',
]);

async function runScenario(relay: RelayUnderTest, scenario: Scenario): Promise<TraceEntry[]> {
  const client = await NgRawClient.open(relay.ngPort, relay.ngHost);
  const trace: TraceEntry[] = [];
  try {
    for (const step of scenario.steps) {
      try {
        const reply = await client.request(step.request, { retransmitMs: 1000, deadlineMs: 4000 });
        trace.push({ label: step.label, request: step.request, reply });
      } catch (err) {
        throw new Error(
          `${relay.name}: step "${step.label}" of "${scenario.name}" failed: ${(err as Error).message}\n${relay.process.describe()}`,
        );
      }
    }
  } finally {
    client.close();
  }
  return trace;
}

/** All differences between the two traces of one scenario, readable, or [] when they agree. */
function compareTraces(reference: TraceEntry[], candidate: TraceEntry[]): string[] {
  const refPorts = new PortNamer();
  const candPorts = new PortNamer();
  const problems: string[] = [];
  reference.forEach((refEntry, index) => {
    const candEntry = candidate[index];
    if (!candEntry) {
      problems.push(`step "${refEntry.label}": no candidate reply`);
      return;
    }
    const refSdp = textOf(refEntry.reply.dict, 'sdp');
    const candSdp = textOf(candEntry.reply.dict, 'sdp');
    if (refSdp !== undefined && candSdp !== undefined) {
      const diff = diffLines(normalizeSdp(refSdp, refPorts), normalizeSdp(candSdp, candPorts));
      if (diff.length > 0) {
        problems.push(`step "${refEntry.label}": SDP lines differ (- rtpengine, + candidate):\n${diff.map((l) => `    ${l}`).join('\n')}`);
      }
    }
    const options: ShapeOptions = {
      equalValueKeys: EQUAL_VALUE_KEYS,
      portKeys: new Set(['local port']),
      ignoreKeys: new Set(['sdp']),
      anyLengthListKeys: new Set(['calls']),
      referencePorts: refPorts,
      candidatePorts: candPorts,
      maxDepth: scenarioStep(refEntry)?.compareDepth,
    };
    const shape = shapeDiff(refEntry.reply.dict, candEntry.reply.dict, options);
    if (shape.length > 0) {
      problems.push(`step "${refEntry.label}": reply dicts differ:\n${shape.map((l) => `    ${l}`).join('\n')}`);
    }
  });
  return problems;
}

/** The scenario step a trace entry came from (steps carry comparison settings). */
function scenarioStep(entry: TraceEntry): Step | undefined {
  for (const scenario of scenarios) {
    const step = scenario.steps.find((s) => s.request === entry.request);
    if (step) return step;
  }
  return undefined;
}

function describeTrace(trace: TraceEntry[]): string {
  return trace.map((e) => `  ${e.label}: ${JSON.stringify(e.reply.plain)}`).join('\n');
}

describe(`rtpengine 10.5 compatibility (candidate: ${candidateKind})`, () => {
  let reference: RelayUnderTest | undefined;
  let candidate: RelayUnderTest | undefined;
  let candidateStartError: Error | undefined;
  const referenceTraces = new Map<string, TraceEntry[]>();

  beforeAll(async () => {
    // The reference must come up: without it nothing here means anything.
    reference = await startRtpengine(REFERENCE);
    try {
      candidate = candidateKind === 'rtpengine' ? await startRtpengine(CANDIDATE) : await startNgrelay(CANDIDATE);
    } catch (err) {
      // Reported by every candidate test below, so the reference tests still run and show the harness works.
      candidateStartError = err as Error;
    }
  }, 600_000);

  afterAll(async () => {
    await Promise.all([reference?.stop(), candidate?.stop()]);
  });

  for (const scenario of scenarios) {
    it(`${scenario.name} — rtpengine (reference)`, async () => {
      if (!reference) throw new Error('rtpengine did not start');
      const trace = await runScenario(reference, scenario);
      try {
        scenario.check(trace, reference);
      } catch (err) {
        throw new Error(`rtpengine fails this scenario's own checks (the test is wrong?): ${(err as Error).message}\n${describeTrace(trace)}`);
      }
      referenceTraces.set(scenario.name, trace);
      if (process.env.COMPAT_DUMP) console.log(`### ${scenario.name} (rtpengine)\n${describeTrace(trace)}`);
    });

    it(`${scenario.name} — ${candidateKind} matches rtpengine`, async () => {
      if (candidateStartError) throw candidateStartError;
      if (!candidate) throw new Error(`${candidateKind} did not start`);
      const referenceTrace = referenceTraces.get(scenario.name);
      if (!referenceTrace) throw new Error('the rtpengine reference run of this scenario failed; see the test above');
      const trace = await runScenario(candidate, scenario);
      const problems = compareTraces(referenceTrace, trace);
      // The message carries the whole readable diff; the count keeps vitest from printing it a second time.
      expect(problems.length, `${candidateKind} differs from rtpengine in "${scenario.name}":\n${problems.join('\n')}\n`).toBe(0);
      scenario.check(trace, candidate);
    });
  }

  it('the comparison itself notices a difference (a changed SDP line and a changed reply type)', () => {
    // Guards against a harness that compares nothing: feed it two traces that differ on purpose.
    const original = referenceTraces.get('plain offer/answer');
    if (!original) throw new Error('the plain offer/answer reference run failed');
    const offerEntry = original[0] as TraceEntry;
    const sdp = textOf(offerEntry.reply.dict, 'sdp') as string;
    const tampered: BDict = Object.assign(Object.create(null) as BDict, offerEntry.reply.dict, {
      sdp: Buffer.from(sdp.replace('a=sendrecv', 'a=sendonly')),
      result: 0,
    });
    const problems = compareTraces([offerEntry], [{ ...offerEntry, reply: { ...offerEntry.reply, dict: tampered } }]);
    expect(problems.join('\n')).toContain('- a=sendrecv');
    expect(problems.join('\n')).toContain('+ a=sendonly');
    expect(problems.join('\n')).toContain('result: rtpengine has string "ok", candidate has integer 0');
  });
});

/** Progress on stderr: step counter and the time left, estimated from the steps done so far. */
export class Progress {
  private done = 0;
  private readonly startedMs = Date.now();

  constructor(
    private readonly total: number,
    /** Expected seconds per step before any is done (step length + setup share). */
    private readonly guessSeconds: number,
    private readonly write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
  ) {}

  /** Marks `count` steps done (a skipped block counts its steps too) and prints the line. */
  step(what: string, count = 1): void {
    this.done = Math.min(this.total, this.done + count);
    this.write(`[${this.done}/${this.total} ${formatDuration(this.secondsLeft())} left] ${what}`);
  }

  note(what: string): void {
    this.write(`ngrelay-bench: ${what}`);
  }

  secondsLeft(): number {
    const left = this.total - this.done;
    const perStep = this.done > 0 ? (Date.now() - this.startedMs) / 1000 / this.done : this.guessSeconds;
    return left * perStep;
  }
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

#!/bin/sh
# A/B of the packet path in one run: this checkout (head) against a base revision, in alternating rounds
# (head, base, then base, head, ...), each round measuring both
#   - instructions per forwarded packet under callgrind (bench/pathcost.sh: deterministic, valid on a busy machine)
#   - CPU-µs per forwarded packet of the whole relay process (bin/ngrelay-bench, ngrelay row, one block of
#     CALLS calls at RATE pps; the base runs through NGRELAY_ENTRY), which needs an otherwise idle machine
# and prints every round and the medians with head ÷ base.
#
#   bench/ab.sh [--base REV] [--rounds N] [--calls C] [--rate PPS] [--step-seconds S] [--packets P] [--no-cpu]
#   npm run bench:ab -- --base 24ba840              (defaults: 3 rounds, 100 calls, 100000 pps, 3 s steps,
#                                                     20000 callgrind packets)
#   npm run bench:ab -- --rounds 1 --step-seconds 1 --packets 2000 --rate 20000   (smoke run)
#
# The base is exported with `git archive` into bench/out/ab-base-<sha>/ (gitignored), built there once with
# this checkout's node_modules (symlinked) and reused by later runs; this checkout must be built (npm ci).
# Needs what bench/pathcost.sh and bin/ngrelay-bench need (valgrind, g++, libssl-dev; root for the bench).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
base=24ba840
rounds=3
calls=100
rate=100000
step=3
packets=20000
cpu=1
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --calls) calls=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --step-seconds) step=$2; shift 2 ;;
    --packets) packets=$2; shift 2 ;;
    --no-cpu) cpu=0; shift ;;
    *) echo "bench/ab.sh: unknown argument $1 (see the comment at the top)" >&2; exit 2 ;;
  esac
done
for n in "$rounds" "$calls" "$rate" "$step" "$packets"; do
  case "$n" in '' | *[!0-9]*) echo "bench/ab.sh: not a number: $n" >&2; exit 2 ;; esac
done

sha=$(git -C "$here" rev-parse --verify "$base^{commit}")
short=$(echo "$sha" | cut -c1-7)
headRev="$(git -C "$here" rev-parse --short HEAD)$(git -C "$here" diff --quiet HEAD -- native src || echo '+changes')"
baseDir="$here/bench/out/ab-base-$short"
if [ ! -f "$baseDir/.built" ]; then
  echo "building base $short in $baseDir" >&2
  rm -rf "$baseDir"
  mkdir -p "$baseDir"
  git -C "$here" archive "$sha" | tar -x -C "$baseDir"
  ln -s "$here/node_modules" "$baseDir/node_modules"
  (cd "$baseDir" && npm run --silent build:ts >&2 && npm run --silent build:native > "$baseDir/build-native.log" 2>&1) || {
    echo "bench/ab.sh: building the base failed (see $baseDir/build-native.log)" >&2
    exit 1
  }
  touch "$baseDir/.built"
fi

work=$(mktemp -d /tmp/ngrelay-ab.XXXXXX)
trap 'rm -rf "$work"' EXIT
results="$work/results.txt"  # lines: <which> <round> <instr/pkt> <cpu-µs/pkt>

# CPU-µs per packet of the ngrelay row at $rate from a bench results file ("n/a" when the step has no figure).
cpuOf() {
  node -e '
    const fs = require("fs"), path = require("path");
    const dir = process.argv[1], rate = Number(process.argv[2]);
    const file = fs.readdirSync(dir).filter((f) => /^results-.*\.json$/.test(f)).sort().pop();
    if (!file) { console.log("n/a"); process.exit(0); }
    const res = JSON.parse(fs.readFileSync(path.join(dir, file), "utf8"));
    const row = res.rows.find((x) => x.name === "ngrelay" && x.rate === rate);
    const us = row && row.cpuSeconds !== null && row.r.received > 0 ? (1e6 * row.cpuSeconds) / row.r.received : NaN;
    console.log(Number.isFinite(us) ? us.toFixed(3) : "n/a");
  ' "$1" "$2"
}

measure() {  # which round
  which=$1
  if [ "$which" = head ]; then tree=$here; else tree=$baseDir; fi
  instr=$("$here/bench/pathcost.sh" "$tree" "$packets" "$calls" | awk '{print $1}')
  us=n/a
  if [ "$cpu" = 1 ]; then
    out="$work/bench-$which-$2"
    mkdir -p "$out"
    if NGRELAY_ENTRY="$tree/bin/ngrelay" "$here/bin/ngrelay-bench" --forwarders=ngrelay --calls="$calls" --rates="$rate" \
      --step-seconds="$step" --no-ceiling --out="$out" > "$out/report.md" 2> "$out/progress.txt"; then
      us=$(cpuOf "$out" "$rate")
    else
      echo "bench/ab.sh: ngrelay-bench failed for $which (round $2): $(tail -3 "$out/progress.txt")" >&2
    fi
  fi
  echo "$which $2 $instr $us" >> "$results"
  printf 'round %s  %-4s  %8s instr/pkt  %8s CPU-us/pkt\n' "$2" "$which" "$instr" "$us"
}

echo "A/B: head $headRev vs base $short; $calls calls; callgrind $packets packets; CPU at $rate pps, ${step}s steps; $rounds rounds"
r=1
while [ "$r" -le "$rounds" ]; do
  if [ $((r % 2)) -eq 1 ]; then measure head "$r"; measure base "$r"; else measure base "$r"; measure head "$r"; fi
  r=$((r + 1))
done

# Medians per side, and head ÷ base.
node -e '
  const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => l.split(" "));
  const median = (xs) => { const s = xs.filter(Number.isFinite).sort((a, b) => a - b); if (!s.length) return NaN;
    const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
  const col = (which, i) => median(lines.filter((l) => l[0] === which).map((l) => Number(l[i])));
  const fmt = (v, d) => (Number.isFinite(v) ? v.toFixed(d) : "n/a");
  const ratio = (h, b) => (Number.isFinite(h) && Number.isFinite(b) ? `${((h / b - 1) * 100).toFixed(1)} %` : "n/a");
  const [hi, bi, hc, bc] = [col("head", 2), col("base", 2), col("head", 3), col("base", 3)];
  console.log(`median instr/pkt:   head ${fmt(hi, 1)}  base ${fmt(bi, 1)}  head vs base ${ratio(hi, bi)}`);
  console.log(`median CPU-us/pkt:  head ${fmt(hc, 3)}  base ${fmt(bc, 3)}  head vs base ${ratio(hc, bc)}`);
' "$results"

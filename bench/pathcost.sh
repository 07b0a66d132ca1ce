#!/bin/sh
# Instructions per forwarded packet in IoThread::drain (bench/pathcost.cpp under callgrind), for the native/
# tree of a checkout: deterministic, so it compares revisions on a busy machine where timings cannot.
#   bench/pathcost.sh [REPO_DIR] [PACKETS] [CALLS]   (this checkout, 20000 packets, 1 call: full receive batches;
#                                                      e.g. 100 calls: one-packet batches, see pathcost.cpp)
# Prints "<instructions per packet> <packets>". Needs g++, libssl-dev and valgrind. PATHCOST_FN='ngrelay::IoThread::run()'
# counts the whole I/O thread instead of the receive-and-forward function; PATHCOST_KEEP=1 keeps the callgrind
# output (callgrind_annotate --auto=yes) and prints where.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
repo=${1:-$here}
packets=${2:-20000}
calls=${3:-1}
work=$(mktemp -d /tmp/ngrelay-pathcost.XXXXXX)
[ -n "${PATHCOST_KEEP:-}" ] && echo "keeping $work" >&2 || trap 'rm -rf "$work"' EXIT
srcs=$(ls "$repo"/native/src/*.cpp | grep -v -E '/(addon|rlimit|sd_notify|[a-z_]*_binding)\.cpp$')
dtmf=""
[ -f "$repo/native/include/dtmf.hpp" ] && dtmf="-DPATHCOST_HAS_DTMF"
grep -q 'void sync()' "$repo/native/include/engine.hpp" && dtmf="$dtmf -DPATHCOST_HAS_SYNC"
g++ -std=c++17 -O2 -g $dtmf -I"$repo/native/include" -o "$work/pathcost" "$here/bench/pathcost.cpp" $srcs -lssl -lcrypto -lpthread
valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
  --toggle-collect="${PATHCOST_FN:-ngrelay::IoThread::drain(ngrelay::Stream*)}" "$work/pathcost" "$packets" "$calls" > "$work/run.txt" 2> "$work/valgrind.txt"
total=$(grep -E '^(summary|totals):' "$work/cg.out" | head -1 | awk '{print $2}')
forwarded=$(awk '{print $2}' "$work/run.txt")
echo "$total $forwarded" | awk '{printf "%.1f %d\n", $1 / $2, $2}'

#!/bin/sh
# Builds the benchmark's native tools into bench/bin/ (gitignored).
# loadgen links libsrtp2 (the SRTP rows); libsrtp2-dev is installed when missing (scripts/install-debian-packages.sh, needs root).
set -e
cd "$(dirname "$0")"
mkdir -p bin
if [ ! -f /usr/include/srtp2/srtp.h ]; then
  echo "build.sh: libsrtp2-dev missing, installing it" >&2
  bash ../scripts/install-debian-packages.sh libsrtp2-dev >&2
fi
CFLAGS="-O2 -g -Wall -Wextra -Werror -std=gnu11"
gcc $CFLAGS -DWITH_SRTP -o bin/loadgen.new loadgen.c -lsrtp2
mv bin/loadgen.new bin/loadgen
gcc $CFLAGS -o bin/minfwd.new minfwd.c
mv bin/minfwd.new bin/minfwd
# The NET_RX softirq meter (bench/softirq-meter.*): needs clang and libbpf-dev; without them the report says
# "softirq not measured" and shows the relay's process CPU only.
if command -v clang >/dev/null 2>&1 && [ -f /usr/include/bpf/libbpf.h ]; then
  clang -O2 -g -target bpf -I/usr/include/$(gcc -print-multiarch) -Wall -Werror -c softirq-meter.bpf.c -o bin/softirq-meter.bpf.o
  gcc $CFLAGS -o bin/softirq-meter.new softirq-meter.c -lbpf
  mv bin/softirq-meter.new bin/softirq-meter
fi

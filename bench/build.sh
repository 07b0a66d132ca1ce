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

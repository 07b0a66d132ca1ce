#!/bin/sh
# Builds the benchmark's native tools into bench/bin/ (gitignored).
set -e
cd "$(dirname "$0")"
mkdir -p bin
CFLAGS="-O2 -g -Wall -Wextra -Werror -std=gnu11"
gcc $CFLAGS -o bin/loadgen loadgen.c
gcc $CFLAGS -o bin/minfwd minfwd.c

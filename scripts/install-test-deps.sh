#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, only those that are missing:
#   rtpengine-daemon  rtpengine 10.5, the reference of the compatibility tests (test/compat/)
#   rtpengine-utils   Debian's rtpengine-ctl, the client of the CLI listener tests
#   kamailio, sip-tester (sipp), iptables, iproute2   the Kamailio + NAT end-to-end test (test/e2e/)
#   tshark            the judge of recorded pcaps (test/integration/recording.test.ts)
#   libsrtp2-dev      the independent SRTP implementation of the SRTP interop tests
#   openssl           makes the self-signed certificate of the --listen-https test
#   chromium          the headless browser of the WebRTC tests and of ngrelay-bench's HTML report test (puppeteer-core)
#   kamailio-websocket-modules   SIP over WebSocket for the WebRTC gateway e2e test (examples/webrtc/kamailio.cfg)
#   redis-server      the Redis of the --redis / --subscribe-keyspace tests (each test starts its own)
#   clang, llvm, libbpf-dev, bpftool   build and inspect the kernel fast path (--table; test/integration/kernel-path*)
# Idempotent: a second run installs nothing. Run by vitest's global setup (test/global-setup.ts), so that
# `.ci/run` (npm install && npm test) passes on a fresh Debian 12 machine. Needs root (apt-get).
# The installing itself is scripts/install-debian-packages.sh, the one installer of tests, e2e and bench.
set -euo pipefail

PACKAGES=(rtpengine-daemon rtpengine-utils kamailio sip-tester iptables iproute2 tshark libsrtp2-dev openssl
  chromium kamailio-websocket-modules redis-server clang llvm libbpf-dev bpftool)

exec bash "$(dirname "$0")/install-debian-packages.sh" "${PACKAGES[@]}"

#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, only those that are missing:
#   rtpengine-daemon  rtpengine 10.5, the reference of the compatibility tests (test/compat/)
#   rtpengine-utils   Debian's rtpengine-ctl, the client of the CLI listener tests
#   kamailio, sip-tester (sipp), iptables, iproute2   the Kamailio + NAT end-to-end test (test/e2e/)
#   tshark            the judge of recorded pcaps (test/integration/recording.test.ts)
#   libsrtp2-dev      the independent SRTP implementation of the SRTP interop tests
#   openssl           makes the self-signed certificate of the --listen-https test
#   clang, llvm, libbpf-dev, bpftool   build and inspect the kernel fast path (--table; test/integration/kernel-path*)
# Idempotent: a second run installs nothing. Run by vitest's global setup (test/global-setup.ts), so that
# `.ci/run` (npm install && npm test) passes on a fresh Debian 12 machine. Needs root (apt-get).
set -euo pipefail

PACKAGES=(rtpengine-daemon rtpengine-utils kamailio sip-tester iptables iproute2 tshark libsrtp2-dev openssl clang llvm libbpf-dev bpftool)

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-test-deps: all present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-test-deps: missing ${missing[*]} and not root; install them with apt-get as root" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Another apt/dpkg may hold the lock (CI images, parallel installs): wait for it up to 5 minutes.
apt_get() {
  apt-get -q -o DPkg::Lock::Timeout=300 "$@"
}

echo "install-test-deps: installing ${missing[*]}"
# tshark asks whether non-root users may capture; answer it so the install never waits for a terminal.
echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections 2>/dev/null || true
if ! apt_get install -y --no-install-recommends "${missing[@]}"; then
  apt_get update
  apt_get install -y --no-install-recommends "${missing[@]}"
fi
# Debian's daemons may start system services on install; the tests run their own instances.
if command -v systemctl >/dev/null 2>&1; then
  for svc in kamailio rtpengine-daemon; do
    systemctl is-active --quiet "$svc" 2>/dev/null && systemctl stop "$svc" || true
  done
fi
echo "install-test-deps: done"

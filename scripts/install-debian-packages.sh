#!/usr/bin/env bash
# The project's one installer of Debian packages: installs those of the named packages that are missing.
#   scripts/install-debian-packages.sh PKG...
# Used by the tests (scripts/install-test-deps.sh, test/support/rtpengine.ts, test/support/tshark.ts), the
# end-to-end tests and the benchmark (bench/build.sh, ngrelay-bench). Idempotent; needs root when something
# is missing. Waits up to 5 minutes for another apt/dpkg holding the lock; refreshes the package lists
# once when a package is not found.
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: $0 PKG..." >&2
  exit 2
fi

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
for pkg in "$@"; do
  installed "$pkg" || missing+=("$pkg")
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-debian-packages: all present ($*)"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-debian-packages: missing ${missing[*]} and not root; install them with apt-get as root" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt_get() {
  apt-get -q -o DPkg::Lock::Timeout=300 "$@"
}

echo "install-debian-packages: installing ${missing[*]}"
# tshark asks whether non-root users may capture; answer it so the install never waits for a terminal.
echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections 2>/dev/null || true
if ! apt_get install -y --no-install-recommends "${missing[@]}"; then
  apt_get update
  apt_get install -y --no-install-recommends "${missing[@]}"
fi
# Debian's daemons may start system services on install; the tests and the benchmark run their own instances.
if command -v systemctl >/dev/null 2>&1; then
  for svc in kamailio rtpengine-daemon redis-server; do
    systemctl is-active --quiet "$svc" 2>/dev/null && systemctl stop "$svc" || true
  done
fi
echo "install-debian-packages: done"

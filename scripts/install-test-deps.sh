#!/usr/bin/env bash
# Installs the system tools the end-to-end tests need (test/e2e/), only those that are missing.
# Idempotent: a second run installs nothing. Called by the e2e test itself so that `.ci/run`
# (npm install && npm test) passes on a fresh Debian 12 machine. Needs root (apt-get).
set -euo pipefail

# binary -> Debian package providing it
declare -A NEEDED=(
  [kamailio]=kamailio
  [sipp]=sip-tester
  [iptables]=iptables
  [ip]=iproute2
)

missing=()
for bin in "${!NEEDED[@]}"; do
  if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$bin" ]; then
    missing+=("${NEEDED[$bin]}")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-test-deps: all present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-test-deps: missing ${missing[*]} and not root; install them with apt-get" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Another apt/dpkg may hold the lock (CI images, parallel installs): wait for it up to 5 minutes.
apt_get() {
  apt-get -o DPkg::Lock::Timeout=300 "$@"
}

echo "install-test-deps: installing ${missing[*]}"
if ! apt_get install -y --no-install-recommends "${missing[@]}"; then
  apt_get update
  apt_get install -y --no-install-recommends "${missing[@]}"
fi
# Debian's kamailio package starts a system service on install; the tests run their own instance.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet kamailio 2>/dev/null; then
  systemctl stop kamailio || true
fi
echo "install-test-deps: done"

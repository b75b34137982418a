#!/usr/bin/env bash
# Unpacks syslog-ng (its loggen for the real-client tests, its daemon as a receiver of the
# syslog output) into DIR (default build/peers).
# syslog-ng conflicts with rsyslog as a Debian package, so it is downloaded and unpacked,
# never installed (see ../shared/TESTING-NOTES.md). Idempotent.
set -euo pipefail
dir=${1:-build/peers}
if [ -x "$dir/syslog-ng/usr/bin/loggen" ]; then exit 0; fi
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download syslog-ng-core >/dev/null 2>&1) || {
  echo "fetch-peers: apt-get download syslog-ng-core failed; the loggen tests will fail" >&2
  exit 0
}
dpkg-deb -x "$work"/syslog-ng-core_*.deb "$dir/syslog-ng"
echo "fetch-peers: loggen unpacked in $dir/syslog-ng"

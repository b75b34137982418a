#!/usr/bin/env bash
# Installs the Debian packages gapless needs to build, test, benchmark and fuzz.
# Idempotent and non-interactive: packages already installed are skipped, and apt is
# only touched when something is missing. Run as root or with sudo available.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  clang libclang-rt-14-dev clang-format clang-tidy   # sanitizers, libFuzzer, formatting
  libssl-dev                                          # SHA-256 (SHA-NI), later TLS/Ed25519
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev                                        # command line
  libboost-dev                                        # Boost.Asio: sockets, timers, TLS
  libtomlplusplus-dev                                 # agent config (TOML with line numbers)
  libsimdjson-dev                                     # HTTP/JSON ingest
  libzstd-dev                                         # compressed batches on the wire
  zlib1g-dev                                          # gzip exports for gapless reconcile
  libsqlite3-dev                                      # the collector's ledger
  libsystemd-dev                                      # journald input
  libnats-dev                                         # the nats output (JetStream)
  librdkafka-dev                                      # the kafka output (and its mock cluster)
  # Real peers the tests drive (they are never started as system services by us):
  util-linux rsyslog rsyslog-relp openssl curl         # rsyslog-relp: omrelp (librelp)
  rsyslog-openssl                                     # rsyslog's TLS driver: the syslog output's TLS test
  systemd-journal-remote                              # writes journal files for journald tests
  nats-server                                         # JetStream for the nats output's tests
  libglib2.0-0                                        # loggen (unpacked by fetch-peers.sh)
  libivykis0 libnet1 libwrap0                         # syslog-ng itself (unpacked the same way)
  chromium                                            # the console's browser tests (headless)
)
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)                              # playwright-core drives chromium
fi

# playwright-core for the console's browser tests, at the version tests/console's lock
# file pins (no browser download: the tests use Debian's chromium).
npm_deps() {
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/console"
  if [ ! -d "$dir/node_modules/playwright-core" ]; then
    echo "install-deps: npm ci in $dir"
    (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  fi
}

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  npm_deps
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
npm_deps

#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs the real programs the tests run against
# (apt), then checks formatting, lints, and runs every test. Called by .ci/run; named in README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

# Real, independent software the integration tests talk to.
PACKAGES=(opentracker python3-libtorrent aria2 transmission-daemon transmission-cli iproute2 redis-server rtorrent)

ensure_packages "${PACKAGES[@]}"
# On a systemd host the package starts a system daemon on 9091/51413; the tests run their own.
if ((INSTALLED)) && command -v systemctl >/dev/null && systemctl is-active --quiet transmission-daemon 2>/dev/null; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo systemctl disable --now transmission-daemon || true
fi

# The DHT is off in every pixtorrent the tests start (tests/common's px() sets this too), and a
# pixtorrent that would bootstrap from the public DHT routers fails instead of reaching them.
export PIXTORRENT_NO_DHT=1 PIXTORRENT_FORBID_PUBLIC_DHT=1

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
# Missing tools fail the tests here instead of skipping them.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
PIXTORRENT_REQUIRE_TOOLS=1 cargo test --locked 2>&1 | tee "$log" || status=$?
# One closing total over every test binary (cargo's own last line is the doc-test run).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"

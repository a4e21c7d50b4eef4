#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs the real programs the tests run against
# (apt), then checks formatting, lints, and runs every test. Called by .ci/run; named in README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real, independent software the integration tests talk to.
PACKAGES=(opentracker)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
# Missing tools fail the tests here instead of skipping them.
PIXTORRENT_REQUIRE_TOOLS=1 cargo test --locked

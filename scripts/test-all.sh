#!/usr/bin/env bash
# Runs every test of the crate on a fresh machine, installing what the tests need:
# tshark (the independent checker of rewritten captures), cargo-fuzz (the fuzz runs),
# through tests/kernel/fetch.sh qemu, a Debian kernel with IPVS and ipvsadm (the VM smoke),
# and through tests/netns/e2e.sh curl, wrk and iproute2 (the TUN director end to end).
# Usage: ./scripts/test-all.sh            (FUZZ_SECONDS=60 per fuzz target by default)
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! command -v tshark >/dev/null; then
  echo "== installing tshark"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq tshark >/dev/null
fi
if ! command -v cargo-fuzz >/dev/null; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi
[ -d ../shared/pcaps ] || { echo "missing ../shared/pcaps: the capture tests read the shared captures in place" >&2; exit 1; }

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo clippy --all-targets --features serde -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet

echo "== unit, property, capture and doc tests"
cargo test --all-targets --features serde
cargo test --doc --features serde

echo "== examples: the main job on its built-in default, and the rewrite demo"
cargo run --quiet --release --example pcap_replay >/dev/null
cargo run --quiet --example rewrite_demo >/dev/null

echo "== the TUN director end to end in network namespaces (tests/netns/e2e.sh)"
$sudo bash ./tests/netns/e2e.sh

echo "== the real kernel: boot the IPVS VM once (tests/kernel/smoke.sh)"
./tests/kernel/smoke.sh

echo "== fuzzing every target for ${FUZZ_SECONDS:-60} s"
./scripts/fuzz-all.sh "${FUZZ_SECONDS:-60}"

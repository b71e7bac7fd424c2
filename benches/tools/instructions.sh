#!/usr/bin/env bash
# Instructions per proxied request, the gateway next to the bare pingora
# proxy, counted by callgrind (exact and independent of the machine's speed,
# user space only). Both run under valgrind during one `proxy_cost` round at
# one thread; counters are zeroed when the round starts and dumped when it
# ends, and divided by the requests wrk made of each (warm-up included).
#
#   benches/tools/instructions.sh [cookie|token]
#
# Needs valgrind (callgrind_control, callgrind_annotate) and what
# `cargo bench --bench proxy_cost` needs. Prints one line per proxy.
set -euo pipefail
path=${1:-cookie}
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mktemp -d /tmp/dsgw-instructions.XXXXXX)
bench=
cleanup() {
  [ -n "$bench" ] && kill "$bench" 2>/dev/null || true
  pkill -f "callgrind-out-file=$out/" 2>/dev/null || true
  rm -rf "$out"
}
trap cleanup EXIT
for t in valgrind callgrind_control callgrind_annotate; do
  command -v "$t" >/dev/null || { echo "instructions.sh: $t is missing (apt install valgrind)" >&2; exit 1; }
done
cd "$repo"
cargo build --release --quiet --bin docusign-gateway
cat > "$out/gateway.sh" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file=$out/gateway.%p '$repo/target/release/docusign-gateway' "\$@"
EOF
chmod +x "$out/gateway.sh"
KEEP_TMP=1 ROUNDS=1 DURATION=${DURATION:-10} GATEWAY_TEST_BIN="$out/gateway.sh" \
  BARE_PINGORA_TOOL="valgrind --tool=callgrind --callgrind-out-file=$out/pingora.%p" \
  cargo bench --bench proxy_cost -- --threads 1 --paths "$path" > "$out/bench.txt" 2>&1 &
bench=$!
. "$repo/benches/tools/common.sh"
wait_for "rounds, order"
callgrind_control -z >/dev/null 2>&1
wait_for "medians over"
callgrind_control -d >/dev/null 2>&1
wait "$bench"; bench=
harness=$(grep -o "temp dir kept: .*" "$out/bench.txt" | awk '{print $4}')
requests() { cat "$harness"/warmup-*-"$1".txt "$harness"/run-*-"$1".txt | awk '/^RESULT/ {s += $2} END {print s}'; }
for name in pingora gateway; do
  file=$(ls "$out/$name".*.* | head -n1)
  n=$(requests "$name")
  ir=$(awk '/^summary:/ {print $2}' "$file")
  echo "$name: $n requests, $((ir / n)) instructions per request"
done
rm -rf "$harness"

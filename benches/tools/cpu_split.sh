#!/usr/bin/env bash
# User and system CPU, system calls and context switches per proxied
# request, the gateway next to the bare pingora proxy, during one
# `proxy_cost` round at one thread (warm-up included). Pass the harness's
# pinning knobs to give each proxy the same core, e.g.
#
#   LOADGEN_CPUS=1 UPSTREAM_CPUS=1 PROXY_CPUS=0 benches/tools/cpu_split.sh [cookie|token]
#
# Needs perf (software events only) and what `cargo bench --bench
# proxy_cost` needs.
set -euo pipefail
path=${1:-cookie}
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mktemp -d /tmp/dsgw-cpu-split.XXXXXX)
bench=
cleanup() {
  [ -n "$bench" ] && kill "$bench" 2>/dev/null || true
  rm -rf "$out"
}
trap cleanup EXIT
command -v perf >/dev/null || { echo "cpu_split.sh: perf is missing (apt install linux-perf)" >&2; exit 1; }
cd "$repo"
KEEP_TMP=1 ROUNDS=1 DURATION=${DURATION:-10} \
  cargo bench --bench proxy_cost -- --threads 1 --paths "$path" > "$out/bench.txt" 2>&1 &
bench=$!
. "$repo/benches/tools/common.sh"
wait_for "rounds, order"
declare -A pid perf
pid[gateway]=$(pgrep -f "docusign-gateway --config .*proxy-cost" | head -n1)
pid[pingora]=$(pgrep -f -- "--bare-pingora 127" | tail -n1)
for name in gateway pingora; do
  perf stat -x, -e raw_syscalls:sys_enter,context-switches -p "${pid[$name]}" -o "$out/$name.perf" &
  perf[$name]=$!
  awk '{print $14, $15}' "/proc/${pid[$name]}/stat" > "$out/$name.t0"
done
wait_for "medians over"
for name in gateway pingora; do
  awk '{print $14, $15}' "/proc/${pid[$name]}/stat" > "$out/$name.t1"
  kill -INT "${perf[$name]}"
done
wait "$bench"; bench=
sleep 1
harness=$(grep -o "temp dir kept: .*" "$out/bench.txt" | awk '{print $4}')
tck=$(getconf CLK_TCK)
for name in pingora gateway; do
  n=$(cat "$harness"/warmup-*-"$name".txt "$harness"/run-*-"$name".txt | awk '/^RESULT/ {s += $2} END {print s}')
  read -r u0 s0 < "$out/$name.t0"; read -r u1 s1 < "$out/$name.t1"
  calls=$(awk -F, '/sys_enter/ {print $1}' "$out/$name.perf")
  switches=$(awk -F, '/context-switches/ {print $1}' "$out/$name.perf")
  awk -v name="$name" -v n="$n" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v t="$tck" -v c="$calls" -v w="$switches" \
    'BEGIN { printf "%s: %d requests, user %.1f us, system %.1f us, %.2f system calls, %.3f context switches per request\n", name, n, u * 1e6 / t / n, s * 1e6 / t / n, c / n, w / n }'
done
rm -rf "$harness"

# Shared by the scripts here (sourced): `wait_for TEXT` waits until the
# `proxy_cost` bench running as $bench, writing to $out/bench.txt, prints
# TEXT (at most 10 minutes); it stops the script if the bench ends first.
wait_for() {
  for _ in $(seq 3000); do
    grep -q "$1" "$out/bench.txt" && return 0
    kill -0 "$bench" 2>/dev/null || { cat "$out/bench.txt" >&2; exit 1; }
    sleep 0.2
  done
  echo "$(basename "$0"): timed out waiting for '$1'" >&2; exit 1
}

#!/usr/bin/env bash
# jemalloc's statistics of a running gateway, and the heap a step added by
# size class. The gateway must be built with the `jemalloc-stats` feature
# (jemalloc keeps no statistics otherwise):
#
#   cargo build --features jemalloc-stats --target-dir target/jemalloc-stats
#   benches/tools/heap_stats.sh dump PID FILE      # while it runs (gdb)
#   benches/tools/heap_stats.sh diff BEFORE AFTER N
#
# `dump` stops the process for a moment (gdb) and has it write
# `malloc_stats_print` into FILE (its stderr is pointed there for the
# call, then given back). `diff` prints, per size class, the bytes
# allocated between two dumps divided by N (say, sessions logged in
# between them), and the total.
set -euo pipefail
case "${1:-}" in
dump)
  pid=$2 file=$(realpath -m "$3")
  command -v gdb >/dev/null || { echo "heap_stats.sh: gdb is missing (apt install gdb)" >&2; exit 1; }
  rm -f "$file"
  gdb -p "$pid" -batch -nx \
    -ex 'set $saved = (int)dup(2)' \
    -ex "set \$file = (int)open(\"$file\", 0101, 0600)" \
    -ex 'call (int)dup2($file, 2)' \
    -ex 'call (void)_rjem_malloc_stats_print(0, 0, "a")' \
    -ex 'call (int)dup2($saved, 2)' \
    -ex 'call (int)close($saved)' \
    -ex 'call (int)close($file)' >/dev/null 2>&1 ||
    { echo "heap_stats.sh: cannot attach gdb to process $pid" >&2; exit 1; }
  grep -q "config.stats: true" "$file" || {
    echo "heap_stats.sh: no statistics in $file (build with --features jemalloc-stats)" >&2; exit 1; }
  ;;
diff)
  # Rows of the `bins:` and `large:` tables: size class, then bytes allocated.
  classes() { awk '/^(bins|large): +size ind/ {on = 1; next} /^[a-z]/ {on = 0} on && $1 ~ /^[0-9]+$/ {print $1, $3}' "$1"; }
  join -a1 -a2 -e0 -o 0,1.2,2.2 <(classes "$2" | sort -k1,1) <(classes "$3" | sort -k1,1) |
    sort -n | awk -v n="$4" '
      { d = ($3 - $2) / n; total += d
        if (d >= 4 || d <= -4) printf "%8d-byte class %9.1f bytes (%.2f blocks)\n", $1, d, d / $1 }
      END { printf "total %.0f bytes per unit (classes under 4 bytes per unit included)\n", total }'
  ;;
*)
  awk 'NR > 1 && !/^#/ {exit} NR > 1 {print}' "$0" >&2; exit 2 ;;
esac

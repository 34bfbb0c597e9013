#!/usr/bin/env bash
# bench/instructions.sh: instructions per 64 B message of the Queue (Enqueue + Dequeue) and of the Pipe (Send +
# ReceiveInto), counted by valgrind --tool=callgrind, in the results file's format:
#   value shmipc.queue_64B_instructions_per_message <n> instructions
#   value shmipc.pipe_64B_instructions_per_message <n> instructions
# A figure that does not move with the machine's noise (cross-core latency, other work): put it beside a change.
#
# How: "ShmBench instructions <queue|pipe> N" sends N messages in one process (after 1,000 uncounted ones); it runs
# under callgrind at N = LOW and N = HIGH, and (Ir(HIGH) - Ir(LOW)) / (HIGH - LOW) is one message's instructions:
# start-up, the JIT and teardown are the same in both runs and cancel. The runtime runs with
# DOTNET_TieredCompilation=0 (every method compiled fully optimized at its first call: under valgrind's 50x slowdown
# tiering's timers would promote methods at run-to-run different points) and DOTNET_EnableWriteXorExecute=0 (valgrind
# does not follow W^X double mappings). Usage: bench/instructions.sh [LOW HIGH]   (default 20000 120000; ~1-2 min each)
# Wrap in the build lock on a shared machine: flock /tmp/shmipc-build.lock bench/instructions.sh
#
# "bench/instructions.sh map [LOW HIGH]" counts a Pool(1) Map of Identity over N ints instead (default 200000 1000000),
# under --trace-children=yes: the parent's instructions per item and the worker's, each from its own process's count:
#   value shmipc.map_parent_instructions_per_item <n> instructions
#   value shmipc.map_worker_instructions_per_item <n> instructions
#
# "bench/instructions.sh queue,queue-try,queue-ring [LOW HIGH]" counts the named structures only: queue-try is TryEnqueue +
# TryDequeue(span) (no timeout), queue-ring the queue's ring alone (no call guard, validation, notify, metrics: the
# difference to "queue" is what ShmQueue's layers cost; ShmBench's Children/RingOnly.cs).
set -euo pipefail
cd "$(dirname "$0")/.."
what_list="queue pipe"
if [ "${1:-}" = map ]; then
  what_list=map
  shift
elif [[ "${1:-}" =~ ^[a-z,-]+$ ]]; then
  what_list=${1//,/ }
  shift
fi
if [ "$what_list" = map ]; then
  low=${1:-200000}
  high=${2:-1000000}
else
  low=${1:-20000}
  high=${2:-120000}
fi
command -v valgrind >/dev/null || { echo "# valgrind not found: no instruction counts" >&2; exit 1; }
build=$(dotnet build -c Release bench/ShmBench -nologo -v q 2>&1) || { echo "$build" >&2; exit 1; }
dll=$(ls bench/ShmBench/bin/Release/net*/ShmBench.dll | head -1)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Total instructions (Ir, all threads) of one run.
count() {
  DOTNET_TieredCompilation=0 DOTNET_EnableWriteXorExecute=0 \
    valgrind --tool=callgrind --callgrind-out-file="$out/cg.%p" --smc-check=all-non-file \
    dotnet "$dll" instructions "$1" "$2" >/dev/null 2>"$out/log"
  grep -Eo 'Collected : [0-9]+' "$out/log" | tail -1 | grep -Eo '[0-9]+' || { cat "$out/log" >&2; exit 1; }
}

# Instructions (Ir) of the first process (the parent) and of all the others (the pool's worker), "parent workers".
count_split() {
  DOTNET_TieredCompilation=0 DOTNET_EnableWriteXorExecute=0 \
    valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$out/cg.%p" --smc-check=all-non-file \
    dotnet "$dll" instructions map "$1" >/dev/null 2>"$out/log"
  grep -E '^==[0-9]+== Collected : [0-9]+' "$out/log" | sed -E 's/^==([0-9]+)== Collected : ([0-9]+)/\1 \2/' |
    awk -v parent="$(grep -Eo '^==[0-9]+==' "$out/log" | head -1 | tr -d =)" \
      '$1 == parent { p += $2; next } { w += $2 } END { if (p == 0) exit 1; printf "%d %d\n", p, w }' || { cat "$out/log" >&2; exit 1; }
}

if [ "$what_list" = map ]; then
  echo "# callgrind --trace-children=yes, DOTNET_TieredCompilation=0: (Ir at N=$high - Ir at N=$low) / $((high - low)); Pool(1) Map of Identity over N ints, 4 chunks"
  read -r pa wa <<<"$(count_split "$low")"
  read -r pb wb <<<"$(count_split "$high")"
  awk -v pa="$pa" -v pb="$pb" -v wa="$wa" -v wb="$wb" -v n=$((high - low)) 'BEGIN {
    printf "value shmipc.map_parent_instructions_per_item %.2f instructions\n", (pb - pa) / n
    printf "value shmipc.map_worker_instructions_per_item %.2f instructions\n", (wb - wa) / n }'
  exit 0
fi

echo "# callgrind, DOTNET_TieredCompilation=0: (Ir at N=$high - Ir at N=$low) / $((high - low)); 64 B messages, one process, no waiting"
for what in $what_list; do
  a=$(count "$what" "$low")
  b=$(count "$what" "$high")
  awk -v a="$a" -v b="$b" -v n=$((high - low)) -v w="$what" \
    'BEGIN { gsub(/-/, "_", w); printf "value shmipc.%s_64B_instructions_per_message %.1f instructions\n", w, (b - a) / n }'
done

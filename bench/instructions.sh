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
set -euo pipefail
cd "$(dirname "$0")/.."
low=${1:-20000}
high=${2:-120000}
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

echo "# callgrind, DOTNET_TieredCompilation=0: (Ir at N=$high - Ir at N=$low) / $((high - low)); 64 B messages, one process, no waiting"
for what in queue pipe; do
  a=$(count "$what" "$low")
  b=$(count "$what" "$high")
  awk -v a="$a" -v b="$b" -v n=$((high - low)) -v w="$what" \
    'BEGIN { printf "value shmipc.%s_64B_instructions_per_message %.1f instructions\n", w, (b - a) / n }'
done

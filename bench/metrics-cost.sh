#!/usr/bin/env bash
# What the metrics cost when nobody listens: the queue and pipe micro benchmarks (BenchmarkDotNet, in process) of
# this build against the same code built with the per-message recording compiled out (-p:ShmNoMetrics=true),
# run alternately ROUNDS times, so both see the same machine. Prints each run's means and the median ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
dotnet build bench/ShmBench -c Release -o "$out/with" -p:ShmReadyToRun=false >/dev/null
dotnet build bench/ShmBench -c Release -o "$out/without" -p:ShmNoMetrics=true -p:ShmReadyToRun=false >/dev/null
for r in $(seq "$rounds"); do
  for v in with without; do
    dotnet "$out/$v/ShmBench.dll" micro "SpanPair" --job short 2>&1 | grep -E "^\| *SpanPair" | sed "s/^/$v queue /"
    dotnet "$out/$v/ShmBench.dll" micro "PipeBenchmarks.SendReceiveInto" --job short 2>&1 | grep -E "^\| *SendReceiveInto" | sed "s/^/$v pipe /"
  done
done | tee "$out/runs.txt"
python3 - "$out/runs.txt" <<'PY'
import re, sys, statistics
runs = {}
for line in open(sys.argv[1]):
    variant, what = line.split()[:2]
    mean = re.search(r"\|\s*([\d.,]+) ns\s*\|", line)
    if mean:
        runs.setdefault((what, variant), []).append(float(mean.group(1).replace(",", "")))
for what in ("queue", "pipe"):
    w, wo = runs.get((what, "with"), []), runs.get((what, "without"), [])
    if w and wo:
        print(f"{what}: with metrics {statistics.median(w):.2f} ns, without {statistics.median(wo):.2f} ns, ratio {statistics.median(w)/statistics.median(wo):.3f} (runs: {w} vs {wo})")
PY

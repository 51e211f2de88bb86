#!/usr/bin/env bash
# The metric gate of CI: the quick metric benchmarks (asv_suite.Metrics) for HEAD and for
# its parent, in this job and this environment (-E existing), then `pieces gate`.
# Speed is not gated here: shared CI machines are too noisy for it (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
ASV=".venv/bin/asv"
if ! git rev-parse --verify -q HEAD~1 >/dev/null; then
    echo "metric gate: HEAD has no parent; nothing to compare"
    exit 0
fi
head=$(git rev-parse HEAD)
parent=$(git rev-parse HEAD~1)
work=$(mktemp -d)
trap 'git worktree remove --force "$work/parent" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
$ASV machine --yes --machine ci-gate >/dev/null
# asv keeps results under .asv/results by config; point it at a scratch copy instead
cp asv.conf.json "$work/asv.conf.json"
sed -i "s#\"results_dir\": \".asv/results\"#\"results_dir\": \"$work/results\"#" "$work/asv.conf.json"
ASV="$ASV --config $work/asv.conf.json"
run() {  # the metric benchmarks for commit $1, with the code on PYTHONPATH $2
    PYTHONPATH="$2" $ASV run -E existing --quick --bench 'Metrics' --set-commit-hash "$1" \
        --machine ci-gate 2>&1 | tail -n 3 || true
}
sed -i "s#\"benchmark_dir\": \"benchmarks\"#\"benchmark_dir\": \"$PWD/benchmarks\"#; s#\"repo\": \".\"#\"repo\": \"$PWD\"#" "$work/asv.conf.json"
git worktree add -q --detach "$work/parent" "$parent"
# Both commits at once: each run is mostly one-threaded Numba compiles, so on two cores
# the pair takes about the time of one (the metrics are counts, not timings, so sharing
# the machine cannot change them). Each writes its own results file.
run "$head" "$PWD" > "$work/head.log" &
head_job=$!
run "$parent" "$work/parent" > "$work/parent.log"
wait "$head_job"
echo "metric gate: HEAD ${head:0:8}"
cat "$work/head.log"
echo "metric gate: parent ${parent:0:8}"
cat "$work/parent.log"
if ! ls "$work/results/ci-gate/${parent:0:8}"-*.json >/dev/null 2>&1; then
    echo "metric gate: no metric results for the parent (it predates the suite); skipped"
    exit 0
fi
.venv/bin/pieces gate "$parent" "$head" --results-dir "$work/results" --machine ci-gate --junit "$work/gate.xml"

#!/usr/bin/env bash
# Mutation testing of the critical modules with mutmut (configured in pyproject.toml, [tool.mutmut]): every mutant
# of the listed modules is run against the fast test selection; the surviving mutants (with their diffs) are written
# to bench/results/mutation_survivors.txt. Not part of CI. A survivor is a test gap to close or an equivalent mutant
# to explain in bench/mutation_equivalents.tsv (mutant name, tab, reason).
#   bash bench/run_mutation_tests.sh                          # every module (needs: pip install mutmut)
#   bash bench/run_mutation_tests.sh "xray_report.inference.writer*"   # only these mutants; earlier results kept
#   bash bench/run_mutation_tests.sh --report-only                     # rewrite the survivors file, run nothing
set -euo pipefail
cd "$(dirname "$0")/.."
python=.venv/bin/python
[ -x "$python" ] || python=python3
"$python" -m pip show mutmut >/dev/null 2>&1 || { echo "mutmut is not installed: pip install mutmut" >&2; exit 2; }
mutmut=$(dirname "$python")/mutmut
report_only=false
if [ "${1:-}" = "--report-only" ]; then report_only=true; shift; fi
$report_only || [ "$#" -gt 0 ] || rm -rf mutants
# the tests' fixture models are trained once per run, with the unmutated code (tests/inference_fixtures.py)
XRAY_REPORT_TEST_MODEL_CACHE=$(mktemp -d)
export XRAY_REPORT_TEST_MODEL_CACHE
jobs=$(nproc)  # before OMP_NUM_THREADS is set: nproc reads it
# one thread per mutant process: the workers are forked, and an OpenMP pool inherited through fork deadlocks
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_EVALUATE_OFFLINE=1
trap 'rm -rf "$XRAY_REPORT_TEST_MODEL_CACHE"' EXIT
$report_only || "$mutmut" run --max-children "$jobs" "$@" > mutants-run.log 2>&1 || { echo "mutmut failed: see mutants-run.log" >&2; tail -5 mutants-run.log >&2; }
out=bench/results/mutation_survivors.txt
{
    echo "# mutmut run of $(date -u +%Y-%m-%d): modules and tests in pyproject.toml [tool.mutmut]"
    [ "$#" -eq 0 ] || echo "# only the $# mutants named on the command line were run (the others count as not checked)"
    "$mutmut" results --all true 2>/dev/null | awk '{print $2}' | sort | uniq -c | sed 's/^/# /'
    for name in $("$mutmut" results 2>/dev/null | awk -F: '/survived/ {gsub(/ /, "", $1); print $1}'); do
        echo
        echo "## $name"
        reason=$(awk -F'\t' -v n="$name" '$1 == n {print $2}' bench/mutation_equivalents.tsv)
        echo "${reason:-NOT EXPLAINED: kill it with a test or add the reason to bench/mutation_equivalents.tsv}"
        "$mutmut" show "$name" 2>/dev/null | grep '^[-+]' | grep -v '^+++\|^---'
    done
} > "$out"
echo "wrote $out: $(grep -c '^## ' "$out") surviving mutants, $(grep -c '^NOT EXPLAINED' "$out") not explained"

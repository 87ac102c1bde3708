#!/usr/bin/env bash
# Mutation testing of the product's critical modules with mutmut (lab tooling, not part of CI): every mutant of the
# modules listed in research/mutation/mutmut.toml is run against the fast test selection; the surviving mutants (with
# their diffs) are written to research/results/mutation_survivors.txt. A survivor is a test gap to close or an
# equivalent mutant to explain in research/mutation/mutation_equivalents.tsv (mutant name, tab, reason).
#
# mutmut reads its configuration from the pyproject.toml of the folder it runs in, so this script runs it in
# research/mutation/run/ (ignored by git): a copy of the product packages, the tests and the configs (modification
# times kept, so that mutmut's own folder run/mutants/ stays valid for named reruns), and the repository's
# pyproject.toml with mutmut.toml appended. The repository's own pyproject.toml carries no mutmut section.
#   bash research/mutation/run_mutation_tests.sh                          # every module (pip install -r research/mutation/requirements.txt)
#   bash research/mutation/run_mutation_tests.sh "xray_report.inference.writer*"   # only these mutants; earlier results kept
#   bash research/mutation/run_mutation_tests.sh --report-only                     # rewrite the survivors file, run nothing
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
here=$repo/research/mutation
run=$here/run
python=$repo/.venv/bin/python
[ -x "$python" ] || python=$(command -v python3)
"$python" -m pip show mutmut >/dev/null 2>&1 || {
    echo "mutmut is not installed: $python -m pip install -r research/mutation/requirements.txt" >&2; exit 2; }
mutmut=("$python" -m mutmut)
report_only=false
if [ "${1:-}" = "--report-only" ]; then report_only=true; shift; fi
mkdir -p "$run"
if ! $report_only; then
    for path in modeling processing dataset_builder xray_report tests configs setup.cfg README.md; do
        rm -rf "${run:?}/$path"
        cp -Rp "$path" "$run/$path"
    done
    find "$run" -path "$run/mutants" -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
    cat pyproject.toml "$here/mutmut.toml" > "$run/pyproject.toml"
    [ "$#" -gt 0 ] || rm -rf "$run/mutants"
fi
cd "$run"
# the tests' fixture models are trained once per run, with the unmutated code (tests/inference_fixtures.py)
XRAY_REPORT_TEST_MODEL_CACHE=$(mktemp -d)
export XRAY_REPORT_TEST_MODEL_CACHE
jobs=$(nproc)  # before OMP_NUM_THREADS is set: nproc reads it
# one thread per mutant process: the workers are forked, and an OpenMP pool inherited through fork deadlocks
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_EVALUATE_OFFLINE=1
trap 'rm -rf "$XRAY_REPORT_TEST_MODEL_CACHE"' EXIT
$report_only || "${mutmut[@]}" run --max-children "$jobs" "$@" > mutants-run.log 2>&1 || {
    echo "mutmut failed: see $run/mutants-run.log" >&2; tail -5 mutants-run.log >&2; }
out=$repo/research/results/mutation_survivors.txt
{
    echo "# mutmut run of $(date -u +%Y-%m-%d): modules and tests in research/mutation/mutmut.toml"
    [ "$#" -eq 0 ] || echo "# only the $# mutants named on the command line were run (the others count as not checked)"
    "${mutmut[@]}" results --all true 2>/dev/null | awk '{print $2}' | sort | uniq -c | sed 's/^/# /'
    for name in $("${mutmut[@]}" results 2>/dev/null | awk -F: '/survived/ {gsub(/ /, "", $1); print $1}'); do
        echo
        echo "## $name"
        reason=$(awk -F'\t' -v n="$name" '$1 == n {print $2}' "$here/mutation_equivalents.tsv")
        echo "${reason:-NOT EXPLAINED: kill it with a test or add the reason to research/mutation/mutation_equivalents.tsv}"
        "${mutmut[@]}" show "$name" 2>/dev/null | grep '^[-+]' | grep -v '^+++\|^---'
    done
} > "$out"
echo "wrote $out: $(grep -c '^## ' "$out") surviving mutants, $(grep -c '^NOT EXPLAINED' "$out") not explained"

#!/usr/bin/env bash
# Runs every test of the solution against a real PostgreSQL (started here when INGESTION_TEST_PG is
# not set), then the short form of the fault suite (scripts/faults.sh, on a throwaway server of its own), and ends
# with one summary line: "N passed, N failed" (", N skipped" when any were).
# Exits non-zero when a test failed or the build broke.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/pg.sh
pg_start || { echo "0 passed, 1 failed"; echo "test.sh: could not start PostgreSQL" >&2; exit 1; }

results=$(mktemp -d /tmp/ingestion-tests.XXXXXX)
status=0
dotnet build Ingestion.sln -c Release -nologo -v q || { echo "0 passed, 1 failed"; echo "test.sh: build failed" >&2; exit 1; }
dotnet test Ingestion.sln -c Release --no-build -nologo -v q \
  --logger "trx" --logger "console;verbosity=normal" --results-directory "$results" "$@" || status=$?

# The short form of the fault suite (kill -9, terminated connections, a server restart, two hosts) on its own
# throwaway server: counted as one test.
faults_status=0
bash scripts/faults.sh --kills 16 --rows 60000 || faults_status=$?

passed=0; failed=0; skipped=0
for f in "$results"/*.trx; do
  [ -f "$f" ] || continue
  line=$(grep -o '<Counters [^>]*>' "$f" | head -n 1)
  get() { local v; v=$(echo "$line" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*'); echo "${v:-0}"; }
  passed=$(( passed + $(get passed) ))
  failed=$(( failed + $(get failed) + $(get error) + $(get timeout) + $(get aborted) ))
  skipped=$(( skipped + $(get notExecuted) ))
done
rm -rf "$results"
if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$status" -ne 0 ]; then failed=1; fi
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
if [ "$faults_status" -eq 0 ]; then passed=$(( passed + 1 )); else failed=$(( failed + 1 )); status=1; fi
summary="$passed passed, $failed failed"
if [ "$skipped" -gt 0 ]; then summary="$summary, $skipped skipped"; fi
echo "$summary"
[ "$failed" -eq 0 ] && [ "$status" -eq 0 ]

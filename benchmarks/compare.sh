#!/usr/bin/env bash
# Side-by-side comparison of our PostgreSQL sink with the usual ways of loading the same rows.
#   bash benchmarks/compare.sh [--rows N] [--cases a,b,c] [--ef-rows N]
# Uses the server named by INGESTION_TEST_PG (or INGESTION_PG); otherwise starts a throwaway
# PostgreSQL like scripts/test.sh (scripts/pg.sh) and stops it at the end. Builds Release, runs
# benchmarks/Ingestion.Compare (which works in its own throwaway database) and prints its lines:
#   case=<name> rows=<n> seconds=<s> rows_per_s=<r> [peak_ws_mb=<m>]
#   ratio <case>/<baseline>=<x> goal>=<g> PASS|MISS
# Exits non-zero when the build or a case failed (a missed goal is reported, not an error).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -z "${INGESTION_TEST_PG:-}" ] && [ -n "${INGESTION_PG:-}" ]; then
  export INGESTION_TEST_PG="$INGESTION_PG"
fi
. scripts/pg.sh
pg_start || { echo "compare.sh: could not start PostgreSQL" >&2; exit 1; }

dotnet build benchmarks/Ingestion.Compare/Ingestion.Compare.csproj -c Release -nologo -v q \
  || { echo "compare.sh: build failed" >&2; exit 1; }
dotnet benchmarks/Ingestion.Compare/bin/Release/net10.0/Ingestion.Compare.dll "$@"

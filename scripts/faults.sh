#!/usr/bin/env bash
# The fault suite: a crash matrix against a throwaway PostgreSQL (never the one named by INGESTION_TEST_PG, since it
# restarts the server). For each fault kind (kill -9 of the host at random moments, during COPY, inside a batch
# transaction, during the key build; pg_terminate_backend of the data and of the lock connection with a second host
# starting at once; an immediate server restart; two hosts at once) it loads the "faults" source into a fresh database
# while injecting faults, then lets a host complete the load and checks: rows = the source's distinct keys, no
# duplicates, values equal, primary key present, checkpoint never ahead of the data (after every fault), no job left
# Running, counts adding up, and the hosts' password (a canary) in no log line, job row or rejected record.
# Prints one line per fault kind and "faults: N kills, 0 lost, 0 duplicated, 0 ahead, 0 stuck jobs, 0 leaked secrets".
#   bash scripts/faults.sh                       the full matrix: 200 kills over 300,000-row loads
#   bash scripts/faults.sh --kills 16 --rows 60000   the short form CI runs
set -uo pipefail
cd "$(dirname "$0")/.."
kills=200; rows=300000; seed=$RANDOM
while [ $# -gt 0 ]; do
  case "$1" in
    --kills) kills="$2"; shift 2 ;;
    --rows) rows="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    *) echo "faults.sh: unknown argument $1 (use --kills N, --rows N, --seed N)" >&2; exit 2 ;;
  esac
done
unset INGESTION_TEST_PG PG_DATA_DIR
. scripts/pg.sh
pg_start || { echo "faults.sh: could not start PostgreSQL" >&2; exit 1; }
dotnet build tests/Ingestion.Faults -c Release -nologo -v q >/dev/null || { echo "faults.sh: build failed" >&2; exit 1; }
echo "faults.sh: $kills kills over $rows-row loads (seed $seed)" >&2
dotnet tests/Ingestion.Faults/bin/Release/net10.0/Ingestion.Faults.dll drive "$rows" "$kills" "$seed"

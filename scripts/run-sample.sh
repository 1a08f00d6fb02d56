#!/usr/bin/env bash
# The main job: the sample host ingests the bundled sample sources into PostgreSQL and prints the
# import-job table. Uses the server in INGESTION_PG when set; otherwise starts a local PostgreSQL
# (installing Debian's package when absent, as root) whose data is kept in .data/pg between runs,
# and stops it on exit. Extra arguments go to the host (e.g. `bash scripts/run-sample.sh run --dry-run`).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/pg.sh
if [ -z "${INGESTION_PG:-}" ]; then
  unset INGESTION_TEST_PG
  PG_DATA_DIR="$(pwd)/.data/pg" pg_start
  export INGESTION_PG="$INGESTION_TEST_PG"
fi
dotnet build samples/Ingestion.Sample.Host -c Release -nologo -v q
dotnet samples/Ingestion.Sample.Host/bin/Release/net10.0/Ingestion.Sample.Host.dll "$@"

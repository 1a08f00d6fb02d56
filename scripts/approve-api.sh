#!/usr/bin/env bash
# Approves the current public API of every package: rewrites tests/Ingestion.ApiApproval/approved/<Package>.txt from
# the built assemblies (PublicApiGenerator), then shows what changed. Review the diff and commit it.
# Usage: bash scripts/approve-api.sh
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build tests/Ingestion.ApiApproval -c Release -nologo -v q
INGESTION_APPROVE_API=1 dotnet test tests/Ingestion.ApiApproval -c Release --no-build -nologo -v q --filter "FullyQualifiedName~PublicApiApprovalTests"
git status --short tests/Ingestion.ApiApproval/approved
git diff --stat tests/Ingestion.ApiApproval/approved

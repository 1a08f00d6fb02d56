#!/usr/bin/env bash
# Packs every src/ project (package, XML docs, symbols .snupkg, README, license expression) into a local
# folder source: artifacts/packages by default. Usage: bash scripts/pack.sh [output-folder] [package-version]
# Prints the packages produced. The packaging test packs with a unique version into a temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(realpath -m "${1:-artifacts/packages}")"
version="${2:-}"
mkdir -p "$out"
# Everything is built under a temporary artifacts folder, never the projects' own bin/obj: a pack running while
# another build of the same projects (an IDE, a test building fixtures) cannot collide with it on obj files.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
list="$scratch/packages.slnx"
{
  echo "<Solution>"
  for p in src/*/*.csproj; do echo "  <Project Path=\"$(pwd)/$p\" />"; done
  echo "</Solution>"
} > "$list"
args=(pack "$list" -c Release -o "$out" --artifacts-path "$scratch/artifacts" -nologo -v q -nodeReuse:false)
if [ -n "$version" ]; then args+=("-p:PackageVersion=$version"); fi
dotnet "${args[@]}"
ls -1 "$out" | grep -E '\.s?nupkg$' | { if [ -n "$version" ]; then grep -F ".$version."; else cat; fi; }

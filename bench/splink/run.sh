#!/usr/bin/env bash
# Runs Splink (PyPI `splink`, DuckDB backend) on the files written by `verity bench resolve`
# and prints its figures beside Verity's.
# Usage: bench/splink/run.sh [BENCH_DIR]   (default bench-out/resolve)
# The virtualenv lives in $SPLINK_VENV (default /tmp/verity-splink-venv) and is created on
# first use from PyPI.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${1:-bench-out/resolve}"
venv="${SPLINK_VENV:-/tmp/verity-splink-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import splink, duckdb" 2>/dev/null; then
  echo "creating $venv and installing splink from PyPI ..." >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "splink>=4"
fi
exec "$venv/bin/python" "$here/splink_bench.py" "$dir"

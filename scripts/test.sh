#!/usr/bin/env bash
# scripts/test.sh — the test command: installs dependencies, builds, makes the Python virtual
# environment the tests use (build/venv, from tests/requirements.txt), and runs every CPU test.
# GPU tests (label gpu) run on a GPU machine: ctest --test-dir build-gpu -L gpu.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/deps.sh"
"$root/scripts/build.sh" "$root/build"
venv=$root/build/venv
if [ ! -x "$venv/bin/python" ] || [ "$root/tests/requirements.txt" -nt "$venv/.stamp" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$root/tests/requirements.txt"
  touch "$venv/.stamp"
fi
export CISPO_PYTHON=$venv/bin/python
# deps.sh installed every sandbox language's toolchain: a test that finds one missing fails
export CISPO_REQUIRE_LANGS=1
cd "$root/build"
ctest -LE gpu --output-on-failure -j"$(nproc)" "$@"

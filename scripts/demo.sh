#!/usr/bin/env bash
# scripts/demo.sh — the main job on one CPU: installs dependencies, builds, then runs SFT warm-start
# and CISPO RL on the tiny model and the synthetic arithmetic task, printing held-out accuracy
# before and after RL. Extra key=value arguments go to `cispo train` (e.g. loss=grpo).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/deps.sh"
"$root/scripts/build.sh" "$root/build"
exec "$root/build/cispo" demo "$@"

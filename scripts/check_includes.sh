#!/usr/bin/env bash
# scripts/check_includes.sh — includes between the project's folders point down only (a ctest through
# tests/cmake/lint.cmake, and the first step of .ci/run):
#     trainer > rl > model > kernels > base
#     sandbox and datasets include only base; rl may also include sandbox and datasets;
#     trainer may include every folder below it; tests/ and bench/ are exempt.
# A folder's own headers and system or third-party headers (<...>, or "..." naming no project folder)
# are always allowed. Prints file:line: the offending include, and exits 1 when there is any.
#     scripts/check_includes.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The folders each folder may include besides itself.
declare -A allowed=(
  [base]=""
  [kernels]="base"
  [model]="kernels base"
  [sandbox]="base"
  [datasets]="base"
  [rl]="model kernels base sandbox datasets"
  [trainer]="rl model kernels base sandbox datasets"
)
project_dirs=" ${!allowed[*]} "

bad=0
for dir in "${!allowed[@]}"; do
  [ -d "$dir" ] || continue
  while IFS= read -r -d '' file; do
    lineno=0
    while IFS= read -r line || [ -n "$line" ]; do
      lineno=$((lineno + 1))
      [[ $line =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\"([^/\"]+)/[^\"]*\" ]] || continue
      target=${BASH_REMATCH[1]}
      [[ $project_dirs == *" $target "* ]] || continue  # not a project folder: a third-party path
      [ "$target" = "$dir" ] && continue
      [[ " ${allowed[$dir]} " == *" $target "* ]] && continue
      echo "$file:$lineno: $dir/ may not include $target/ (${line#"${line%%[![:space:]]*}"}); allowed: $dir ${allowed[$dir]}"
      bad=1
    done < "$file"
  done < <(find "$dir" -type f \( -name '*.c' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) -print0 | sort -z)
done
if [ "$bad" -ne 0 ]; then
  echo "check_includes: includes must point down (trainer > rl > model > kernels > base; sandbox, datasets > base)"
  exit 1
fi
echo "check_includes: ok"

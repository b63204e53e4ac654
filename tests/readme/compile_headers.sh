#!/usr/bin/env bash
# Every public header on its own, with a compiler other than the build's
# (Debian 12's clang 14, whose <source_location> is unusable, so the headers'
# stand-in is what compiles): -std=c++20 -Wall -Wextra -Werror, syntax only.
# detail/ holds the parts the public headers include themselves.
#
#   compile_headers.sh COMPILER SOURCE_DIR
set -euo pipefail
compiler=$1
src=$2
if ! command -v "$compiler" >/dev/null; then
  echo "$compiler not found: install it (bash scripts/install-deps.sh all installs clang-14)" >&2
  exit 1
fi
includes=()
for dir in base pool tracing cache cache/redis exporters; do includes+=("-I$src/$dir/include"); done
failed=0
count=0
while IFS= read -r header; do
  count=$((count + 1))
  if ! echo "#include <${header#*/include/}>" |
    "$compiler" -std=c++20 -Wall -Wextra -Werror -fsyntax-only "${includes[@]}" -x c++ -; then
    echo "FAILED: $header" >&2
    failed=$((failed + 1))
  fi
done < <(find "$src"/{base,pool,tracing,cache,cache/redis,exporters}/include -name '*.h' -not -path '*/detail/*' | sort)
echo "$count headers compiled alone with $compiler, $failed failed"
((failed == 0 && count > 0))

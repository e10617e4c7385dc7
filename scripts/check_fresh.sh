#!/usr/bin/env bash
# "Works on a fresh machine", one command away: clone the committed HEAD into a temporary folder,
# install from requirements.lock into a new .venv there and run `make test` in it. Uncommitted
# changes are not in the clone (that is the point); commit first. KEEP=1 keeps the folder.
set -euo pipefail

repo="$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)"
work="$(mktemp -d "${TMPDIR:-/tmp}/sagd-fresh.XXXXXX")"
if [ "${KEEP:-0}" = 1 ]; then
    echo "check-fresh: keeping $work"
else
    trap 'rm -rf "$work"' EXIT
fi

if [ -n "$(git -C "$repo" status --porcelain)" ]; then
    echo "check-fresh: note: uncommitted changes in $repo are not part of this check" >&2
fi
git clone --quiet --no-local "$repo" "$work/sagd"
cd "$work/sagd"
echo "check-fresh: $(git log -1 --format='%h %s') in $work/sagd"
start=$(date +%s)
make test
echo "check-fresh: passed in $(( $(date +%s) - start )) s (install included)"

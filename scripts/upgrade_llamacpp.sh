#!/usr/bin/env bash
# Move the pinned llama.cpp source (scripts/llamacpp.pin) to another llama-cpp-python version, and only if every
# demo fork edit (bot/llamacpp_forks.DEMO_FORKS) still applies to it AND still gets its promised verdict:
#
#   scripts/upgrade_llamacpp.sh VERSION        e.g. scripts/upgrade_llamacpp.sh 0.3.37
#
# 1. downloads that sdist from PyPI (pip) and takes its sha256;
# 2. makes the tree with scripts/fetch_llamacpp.sh under a candidate pin (fixed identity and date: its commit);
# 3. checks that every fork edit's anchors occur exactly once in it (fast; the list of the ones that do not);
# 4. runs tests/test_llamacpp_ci.py on it (the native and simulation builds, the jailed executor, the planted
#    winner, slowdown and broken change: minutes) -- the same test CI runs on every push;
# 5. only then rewrites scripts/llamacpp.pin. Commit it with the README figures re-measured (demo --llama, cold
#    and warm): every llama.cpp figure's baseline moves with the source.
# Nothing is changed when a step fails; the tree stays in the cache for fixing the edits
# (${XDG_CACHE_HOME:-~/.cache}/autoresearch-bot/llama.cpp-VERSION).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="${1:?usage: scripts/upgrade_llamacpp.sh VERSION}"
py="${PYTHON:-$root/.venv/bin/python}"
[ -x "$py" ] || { echo "error: $py is missing (make venv, or set PYTHON)" >&2; exit 1; }
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/autoresearch-bot"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "1/5 downloading llama-cpp-python==$version (sdist) from the package index" >&2
"$py" -m pip download --quiet --no-deps --no-binary :all: -d "$work/sdist" "llama-cpp-python==$version" >&2
tarball="$work/sdist/llama_cpp_python-$version.tar.gz"
[ -f "$tarball" ] || { echo "error: pip gave no $(basename "$tarball")" >&2; exit 1; }
sha256="$(sha256sum "$tarball" | cut -d' ' -f1)"
mkdir -p "$cache_root/sdist"
cp "$tarball" "$cache_root/sdist/"

write_pin() {  # write_pin FILE COMMIT
  {
    sed -n '/^#/p' "$root/scripts/llamacpp.pin"
    echo "LLAMACPP_PY_VERSION=$version"
    echo "LLAMACPP_SDIST_SHA256=$sha256"
    echo "LLAMACPP_COMMIT=$2"
  } > "$1"
}
write_pin "$work/llamacpp.pin" ""
echo "2/5 making the tree (sha256 $sha256)" >&2
tree="$(AUTORESEARCH_LLAMACPP_PIN="$work/llamacpp.pin" "$root/scripts/fetch_llamacpp.sh" | tail -n 1)"
commit="$(git -C "$tree" rev-parse HEAD)"
write_pin "$work/llamacpp.pin" "$commit"

echo "3/5 do the demo fork edits apply to $tree ($commit)?" >&2
PYTHONPATH="$root" "$py" - "$tree" <<'PY'
import sys
from bot.llamacpp_forks import check_edits
problems = check_edits(sys.argv[1])
for p in problems:
    print(f"   edit does not apply: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY

echo "4/5 tests/test_llamacpp_ci.py on it (builds and measures; minutes)" >&2
(cd "$root" && AUTORESEARCH_LLAMACPP_PIN="$work/llamacpp.pin" "$py" -m pytest -q -p no:cacheprovider -s \
  tests/test_llamacpp_ci.py) >&2 || {
  echo "error: a demo verdict changed on llama-cpp-python $version: scripts/llamacpp.pin NOT changed" >&2; exit 1; }

cp "$work/llamacpp.pin" "$root/scripts/llamacpp.pin"
echo "5/5 pinned llama-cpp-python $version (llama.cpp $commit) in scripts/llamacpp.pin;" \
  "re-measure the README's llama.cpp figures (demo --llama cold and warm) before committing it" >&2

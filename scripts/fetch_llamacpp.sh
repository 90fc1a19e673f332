#!/usr/bin/env bash
# Obtain the PINNED llama.cpp source without GitHub access: the copy vendored in the llama-cpp-python sdist
# (PyPI) named by scripts/llamacpp.pin, checked by its sha256, turned into a local git repository with one
# commit made with a fixed author, committer and date (the same commit sha on every machine: the pin records it).
#
# usage: scripts/fetch_llamacpp.sh [DEST]
#   DEST     default: ${XDG_CACHE_HOME:-~/.cache}/autoresearch-bot/llama.cpp-<version>
#   AUTORESEARCH_LLAMACPP_PIN=<file>  another pin file (scripts/upgrade_llamacpp.sh tries a new version so)
# Idempotent: an existing DEST at the pinned commit is reused; another commit there is an error (never used
# silently). The sdist is cached in ${XDG_CACHE_HOME:-~/.cache}/autoresearch-bot/sdist.
# Prints the repository path on the last line of stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pin="${AUTORESEARCH_LLAMACPP_PIN:-$here/llamacpp.pin}"
[ -f "$pin" ] || { echo "error: pin file $pin is missing" >&2; exit 1; }
version="$(sed -n 's/^LLAMACPP_PY_VERSION=//p' "$pin")"
sha256="$(sed -n 's/^LLAMACPP_SDIST_SHA256=//p' "$pin")"
commit="$(sed -n 's/^LLAMACPP_COMMIT=//p' "$pin")"
[ -n "$version" ] && [ -n "$sha256" ] || {
  echo "error: $pin must set LLAMACPP_PY_VERSION and LLAMACPP_SDIST_SHA256" >&2; exit 1; }

cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/autoresearch-bot"
dest="${1:-$cache_root/llama.cpp-$version}"
if [ -n "${PIP:-}" ]; then pip="$PIP"
elif command -v pip >/dev/null 2>&1; then pip=pip
else pip="python3 -m pip"; fi
# a fixed identity and date, and no user/system git config: the commit sha depends on the sdist alone
export GIT_AUTHOR_NAME=autoresearch-bot GIT_AUTHOR_EMAIL=bot@localhost GIT_AUTHOR_DATE="2026-01-01T00:00:00+00:00"
export GIT_COMMITTER_NAME=autoresearch-bot GIT_COMMITTER_EMAIL=bot@localhost
export GIT_COMMITTER_DATE="2026-01-01T00:00:00+00:00" GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1

if head="$(git -C "$dest" rev-parse --verify -q HEAD 2>/dev/null)"; then
  if [ -n "$commit" ] && [ "$head" != "$commit" ]; then
    echo "error: $dest is at $head, not the pinned llama.cpp commit $commit (llama-cpp-python $version);" \
      "remove it and run this script again" >&2
    exit 1
  fi
  echo "llama.cpp $version already at $dest (${head:0:12})" >&2
  echo "$dest"
  exit 0
fi

sdist_dir="$cache_root/sdist"
mkdir -p "$sdist_dir"
tarball="$sdist_dir/llama_cpp_python-$version.tar.gz"
if [ -f "$tarball" ] && ! echo "$sha256  $tarball" | sha256sum -c --status; then
  echo "cached $tarball does not match the pinned sha256: downloading it again" >&2
  rm -f "$tarball"
fi
if [ ! -f "$tarball" ]; then
  echo "downloading llama-cpp-python==$version sdist into $sdist_dir (pip, sha256 checked)" >&2
  req="$(mktemp)"
  trap 'rm -f "$req"' EXIT
  echo "llama-cpp-python==$version --hash=sha256:$sha256" > "$req"
  $pip download --quiet --no-deps --no-binary :all: --require-hashes -d "$sdist_dir" -r "$req" >&2
fi
echo "$sha256  $tarball" | sha256sum -c --status || {
  echo "error: $tarball does not match the pinned sha256 $sha256" >&2; exit 1; }

mkdir -p "$(dirname "$dest")"
tmp="$(mktemp -d "$(dirname "$dest")/unpack.XXXXXX")"
trap 'rm -rf "$tmp"; rm -f "${req:-}"' EXIT
tar -xzf "$tarball" -C "$tmp"
vendor="$(find "$tmp" -maxdepth 3 -type d -path '*/vendor/llama.cpp' | head -n 1)"
[ -n "$vendor" ] && [ -f "$vendor/CMakeLists.txt" ] || {
  echo "error: $tarball has no vendor/llama.cpp with CMakeLists.txt" >&2; exit 1; }
rm -rf "$vendor/.git"   # a submodule pointer file, useless outside the original checkout
git -C "$vendor" init -q -b master
git -C "$vendor" add -A
git -C "$vendor" commit -q -m "llama.cpp vendored in llama_cpp_python-$version"
head="$(git -C "$vendor" rev-parse HEAD)"
if [ -n "$commit" ] && [ "$head" != "$commit" ]; then
  echo "error: the sdist's llama.cpp became commit $head, not the pinned $commit (git $(git --version))" >&2
  exit 1
fi
rm -rf "$dest"
mv "$vendor" "$dest"
echo "llama.cpp $version ready at $dest (${head:0:12})" >&2
echo "$dest"

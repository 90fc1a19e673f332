#!/usr/bin/env bash
# Obtain llama.cpp source without GitHub access: take the copy vendored in the llama-cpp-python sdist (PyPI)
# and turn it into a local git repository with one commit (a real repo the bench driver can clone/worktree).
#
# usage: scripts/fetch_llamacpp.sh [DEST] [VERSION]
#   DEST     default: ${XDG_CACHE_HOME:-~/.cache}/autoresearch-bot/llama.cpp
#   VERSION  llama-cpp-python version (default: newest on the index)
# Idempotent: an existing DEST repo with a commit is reused; the sdist download is cached next to it.
# Prints the repository path on the last line of stdout.
set -euo pipefail

cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/autoresearch-bot"
dest="${1:-$cache_root/llama.cpp}"
version="${2:-}"
pip="${PIP:-pip}"
if ! command -v "$pip" >/dev/null 2>&1; then pip="python3 -m pip"; fi

if git -C "$dest" rev-parse --verify -q HEAD >/dev/null 2>&1; then
  echo "llama.cpp already at $dest ($(git -C "$dest" rev-parse --short HEAD))" >&2
  echo "$dest"
  exit 0
fi

sdist_dir="$(dirname "$dest")/sdist"
mkdir -p "$sdist_dir"
spec="llama-cpp-python${version:+==$version}"
if ! ls "$sdist_dir"/llama_cpp_python-*.tar.gz >/dev/null 2>&1; then
  echo "downloading $spec sdist into $sdist_dir" >&2
  $pip download --quiet --no-deps --no-binary :all: -d "$sdist_dir" "$spec" >&2
fi
tarball="$(ls -1 "$sdist_dir"/llama_cpp_python-*.tar.gz | sort -V | tail -n 1)"
[ -f "$tarball" ] || { echo "error: no llama_cpp_python sdist in $sdist_dir" >&2; exit 1; }

tmp="$(mktemp -d "$(dirname "$dest")/unpack.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$tarball" -C "$tmp"
vendor="$(find "$tmp" -maxdepth 3 -type d -path '*/vendor/llama.cpp' | head -n 1)"
[ -n "$vendor" ] && [ -f "$vendor/CMakeLists.txt" ] || {
  echo "error: $tarball has no vendor/llama.cpp with CMakeLists.txt" >&2; exit 1; }
rm -rf "$vendor/.git"   # a submodule pointer file, useless outside the original checkout

rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
mv "$vendor" "$dest"
git -C "$dest" init -q -b master
git -C "$dest" add -A
git -C "$dest" -c user.name=autoresearch-bot -c user.email=bot@localhost \
  commit -q -m "llama.cpp vendored in $(basename "$tarball" .tar.gz)"
echo "llama.cpp ready at $dest ($(git -C "$dest" rev-parse --short HEAD))" >&2
echo "$dest"

#!/usr/bin/env bash
# Installs the system tools the bot's local benchmarks use, where they are missing and this user may install:
#   valgrind  the simulated-cost tier (cachegrind); without it verdicts come from wall time alone
#   ccache    cheap candidate builds of CMake projects (llama.cpp): a one-file change rebuilds in seconds
#   bwrap     (package bubblewrap) the jail candidate code runs in (bot/experiments/jail.py); without it the local
#             executor refuses candidates and the tests that need one skip with that reason
# Prints one line per tool; never fails the caller (the bot reports a missing tool in its own words).
set -u
missing=()
pkg() { [ "$1" = bwrap ] && echo bubblewrap || echo "$1"; }
for tool in valgrind ccache bwrap; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
packages=(); for tool in "${missing[@]}"; do packages+=("$(pkg "$tool")"); done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO="none"; fi
fi
if [ "$SUDO" != "none" ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure_tools: installing ${packages[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  { $SUDO apt-get install -y -q "${packages[@]}" || { $SUDO apt-get update -q && $SUDO apt-get install -y -q "${packages[@]}"; }; } \
    >/tmp/ensure_tools.log 2>&1 || echo "ensure_tools: apt-get failed (see /tmp/ensure_tools.log)"
elif [ "$SUDO" != "none" ] && command -v dnf >/dev/null 2>&1; then
  $SUDO dnf install -y "${packages[@]}" >/tmp/ensure_tools.log 2>&1 || echo "ensure_tools: dnf failed"
fi
for tool in "${missing[@]}"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    case $tool in
      valgrind) echo "ensure_tools: valgrind is MISSING: the simulated-cost tier is off and verdicts come from wall time alone (install the valgrind package)";;
      ccache) echo "ensure_tools: ccache is missing: CMake candidates (llama.cpp) rebuild from scratch (install the ccache package)";;
      bwrap) echo "ensure_tools: bubblewrap (bwrap) is MISSING: the local executor refuses candidate code (install the bubblewrap package)";;
    esac
  fi
done
exit 0

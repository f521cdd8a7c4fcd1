#!/usr/bin/env bash
# Set up a fresh Debian machine for jaxlasso: R + glmnet + edgeR (parity tests and benchmarks),
# Chromium (report rendering test), and the Python package with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

need_apt=()
if ! command -v Rscript >/dev/null 2>&1 || ! Rscript -e 'suppressMessages(library(glmnet))' >/dev/null 2>&1; then
  need_apt+=(r-base-core r-cran-glmnet)
fi
if ! Rscript -e 'suppressMessages(library(edgeR))' >/dev/null 2>&1; then
  need_apt+=(r-bioc-edger)   # edgeR: the logCPM parity test
fi
if ! command -v chromium >/dev/null 2>&1; then
  need_apt+=(chromium)
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "setup: apt-get not found; install ${need_apt[*]} yourself (the tests that need them skip)" >&2
  fi
fi

python -m pip install -q --disable-pip-version-check -e ".[test]"

#!/usr/bin/env bash
# Creates .venv (if absent) with the project and everything its tests need, from scratch, offline from any model hub.
# Used by the README's two commands and by .ci/run. Needs Python 3.11 (torch 2.14.1 / torchvision 0.29.1 wheels).
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: Java for METEOR (pycocoevalcap), Chromium + its driver for the dashboard's browser test.
# Without them METEOR is reported as unavailable and the browser test skips, naming what is missing.
missing=()
command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "setup: cannot install ${missing[*]} here (needs root and apt-get)." >&2
    fi
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# The torch/torchvision pair is installed first and pinned: other pairings fail to import torchvision.
.venv/bin/python -m pip install -q -c .ci/constraints.txt torch==2.14.1 torchvision==0.29.1
.venv/bin/python -m pip install -q -c .ci/constraints.txt -e ".[dev,metrics,train,lora,demo]"
.venv/bin/python -c "import modeling, processing; print('setup: environment ready')"

#!/usr/bin/env bash
# Creates .venv (if absent) with the project and everything its tests need, from scratch, offline from any model hub.
# Used by the README's two commands and by .ci/run. Needs Python 3.11 (torch 2.14.1 / torchvision 0.29.1 wheels).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v java >/dev/null 2>&1; then
    # METEOR (pycocoevalcap) runs on Java; without it METEOR is reported as unavailable.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null
    else
        echo "setup: java not found and cannot be installed here; METEOR will be reported as unavailable." >&2
    fi
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# The torch/torchvision pair is installed first and pinned: other pairings fail to import torchvision.
.venv/bin/python -m pip install -q -c .ci/constraints.txt torch==2.14.1 torchvision==0.29.1
.venv/bin/python -m pip install -q -c .ci/constraints.txt -e ".[dev,metrics]"
.venv/bin/python -c "import modeling, processing; print('setup: environment ready')"

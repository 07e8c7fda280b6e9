#!/usr/bin/env bash
# Regenerates every committed fixture under tests/fixtures from the pinned
# reference implementations (tests/ref/requirements.txt) in a private virtual
# environment .venv-ref.  Each tests/ref/gen_*.py writes its own fixtures;
# they are run in name order.  CI never runs this: it reads the committed
# fixtures.  Some generators need `make model` (the SmolLM2 GGUF) or
# ../shared/tokenizers; they say so and stop if it is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x .venv-ref/bin/python ]; then
    python3 -m venv .venv-ref
    .venv-ref/bin/pip install -q --upgrade pip
    .venv-ref/bin/pip install -q -r tests/ref/requirements.txt
fi
for g in tests/ref/gen_*.py; do
    echo "fixtures: $g"
    .venv-ref/bin/python "$g"
done

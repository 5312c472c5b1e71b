#!/usr/bin/env bash
# Set up (see scripts/setup.sh --dev) and run every test: the host build of the
# firmware's portable C++ core (CMake + GoogleTest + sanitizers), then pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh -k host).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
echo "== C++ portable core (host build) =="
cmake -S tests/firmware -B build/core -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build/core -j2
ctest --test-dir build/core --output-on-failure
echo "== pytest =="
exec .venv/bin/python -m pytest "$@"

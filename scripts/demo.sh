#!/usr/bin/env bash
# The README's first command: set up this machine for the demo (runtime + sortcam[demo], no TensorFlow;
# scripts/setup.sh --demo: mosquitto, .venv, sortcam[demo]) and run the whole line in the simulator:
# a local MQTT broker, the device twin on the bundled sample photos, the host controller
# and the virtual sorter, ending with a report. Extra arguments go to `sortcam demo`
# (e.g. scripts/demo.sh --items 48 --report demo-report.json).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --demo
exec .venv/bin/sortcam demo "$@"

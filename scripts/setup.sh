#!/usr/bin/env bash
# Set up a fresh machine for sortcam: system packages (when run as root or with sudo),
# a virtual environment in .venv, and the sortcam package with the extras asked for.
#   scripts/setup.sh            runtime only (demo, host, sim): no TensorFlow
#   scripts/setup.sh --dev      + training (TensorFlow) and test tools, C++ test deps
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
debs=(mosquitto)
if [[ "${1:-}" == "--dev" ]]; then
  extras="[train,test,video]"
  debs+=(cmake g++ libgtest-dev libcjson-dev)  # libcjson-dev: the core parses cmd payloads with cJSON
  # The firmware header check (tests/firmware/test_idf_headers.py): a 32-bit newlib C++
  # compiler to parse the camera firmware against the real ESP-IDF headers. Large: measured
  # 2026-12-01 on Debian 12: 412 MB download and 2,473 MB installed, 51 s to install.
  debs+=(gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib)
  debs+=(chromium)  # the console's browser test (Playwright drives the system Chromium)
fi

missing=()
for d in "${debs[@]}"; do dpkg -s "$d" >/dev/null 2>&1 || missing+=("$d"); done
if ((${#missing[@]})); then
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# mosquitto's Debian package starts a system broker on 1883; sortcam's tests and demo
# start their own brokers on free ports, so it may keep running or not.

PY=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
echo "setup: installing sortcam${extras} into .venv"
.venv/bin/python -m pip install -q -e ".${extras}"

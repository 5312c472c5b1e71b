#!/usr/bin/env bash
# Set up a fresh machine for sortcam: system packages (when run as root or with sudo),
# a virtual environment in .venv, and the sortcam package with the extras asked for.
#   scripts/setup.sh            runtime only (host controller, device twin, collect, tools): no
#                               TensorFlow, no demo broker, no Flask (a conveyor host's install)
#   scripts/setup.sh --demo     + the demo's embedded broker and the console (sortcam[demo])
#   scripts/setup.sh --dev      + training (TensorFlow), test tools, video, C++ test deps
# pip's output goes to .venv/setup-pip.log; what it fetches is printed as it goes.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
debs=(mosquitto)
case "${1:-}" in
  "") ;;
  --demo) extras="[demo]" ;;
  --dev)
    extras="[train,test,video,demo,console]"
    debs+=(cmake g++ libgtest-dev libcjson-dev)  # libcjson-dev: the core parses cmd payloads with cJSON
    # The firmware header check (tests/firmware/test_idf_headers.py): a 32-bit newlib C++
    # compiler to parse the camera firmware against the real ESP-IDF headers. Large: measured
    # 2026-12-01 on Debian 12: 412 MB download and 2,473 MB installed, 51 s to install.
    debs+=(gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib)
    debs+=(chromium)  # the console's browser test (Playwright drives the system Chromium)
    ;;
  *) echo "usage: scripts/setup.sh [--demo | --dev]" >&2; exit 2 ;;
esac

missing=()
for d in "${debs[@]}"; do dpkg -s "$d" >/dev/null 2>&1 || missing+=("$d"); done
if ((${#missing[@]})); then
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  echo "setup: installing Debian packages: ${missing[*]} (apt-get, quiet; can take minutes)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# mosquitto's Debian package starts a system broker on 1883; sortcam's tests and demo
# start their own brokers on free ports, so it may keep running or not.

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv with $("$PY" --version 2>&1)"
  "$PY" -m venv .venv
fi
log=.venv/setup-pip.log
: >"$log"

# pip is silent when its output is not a terminal, and a first install takes about a minute:
# print each package as pip starts on it, keep the whole output in the log, show its end on failure.
pip_install() {
  local what=$1; shift
  local t0=$SECONDS
  echo "setup: $what"
  if ! .venv/bin/python -m pip install --progress-bar off "$@" 2>&1 | tee -a "$log" | awk '
      /^Collecting / { n++; printf "setup:   %3d  %s\n", n, $2; fflush() }
      /^Installing collected packages/ { print "setup:   unpacking and installing..."; fflush() }'; then
    echo "setup: pip failed; the end of $log:" >&2
    tail -n 25 "$log" >&2
    exit 1
  fi
  echo "setup: done in $((SECONDS - t0)) s"
}

pip_install "upgrading pip" --upgrade pip
pip_install "installing sortcam${extras} into .venv (a first install takes about a minute)" -e ".${extras}"

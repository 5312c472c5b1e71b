#!/usr/bin/env bash
# Lines of the camera firmware: the board layer, which only a real build and a board can
# test (firmware/src without the generated model files and the sorter), against the portable
# core the host tests cover (firmware/lib/sortcam_core). Physical lines, comments included.
#   bash scripts/firmware_lines.sh
set -euo pipefail
cd "$(dirname "$0")/.."
count() { if (($# == 0)); then echo 0; else cat "$@" | wc -l; fi; }
mapfile -t board < <(find firmware/src -path firmware/src/sorter -prune -o -type f \( -name '*.cc' -o -name '*.h' \) \
  ! -name 'model_*' -print | sort)
mapfile -t core < <(find firmware/lib/sortcam_core -type f \( -name '*.cc' -o -name '*.h' \) | sort)
b=$(count "${board[@]}")
c=$(count "${core[@]}")
awk -v b="$b" -v c="$c" 'BEGIN { printf "board layer %d of %d lines (%.1f%%); portable core %d\n", b, b + c, 100 * b / (b + c), c }'

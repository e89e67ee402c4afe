#!/usr/bin/env bash
# Build the one-folder bundle (dist/diffusion-studio/) with PyInstaller, then smoke-test it:
# the CLI samples with the embedded model, and the window starts (under Xvfb when there is
# no display). Run from a venv with the project installed.
set -euo pipefail
cd "$(dirname "$0")/.."
pip install -q 'pyinstaller>=6.10'
pyinstaller --noconfirm --clean --log-level WARN --distpath dist --workpath build/pyinstaller \
  packaging/diffusion-studio.spec
bundle=dist/diffusion-studio
exe=$bundle/diffusion-studio
echo "== bundle: $(du -sh "$bundle" | cut -f1)"

smoke=build/bundle-smoke  # kept: the sample to look at, the window's log
rm -rf "$smoke" && mkdir -p "$smoke"
"$exe" --version
"$exe" info
"$exe" sample --class Flags --guidance 3 --steps 20 -n 4 --quiet --grid "$smoke/flags.png"
test -s "$smoke/flags.png"
echo "== sample written: $smoke/flags.png"

display=()
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then display=(xvfb-run -a); fi
status=0
timeout 30 "${display[@]}" "$exe" > "$smoke/gui.log" 2>&1 || status=$?
if [ "$status" -ne 124 ]; then  # 124: still running when timeout stopped it, as it should be
  echo "the window exited early (status $status):"; cat "$smoke/gui.log"; exit 1
fi
echo "== the window started and ran for 30 s"

#!/usr/bin/env bash
# Put Diffusion Studio in the desktop's application menu (freedesktop: GNOME, KDE, ...), for
# this user. Run it from the virtual environment that has diffusion-studio installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
id=org.diffusionstudio.DiffusionStudio
exe=$(command -v diffusion-studio) || { echo "diffusion-studio is not on PATH: activate its venv first" >&2; exit 2; }
icon=$(python -c 'from diffusion_studio.core.resources import resources_dir; print(resources_dir() / "icon.png")')
data=${XDG_DATA_HOME:-$HOME/.local/share}
mkdir -p "$data/applications"
install -Dm644 "$icon" "$data/icons/hicolor/256x256/apps/$id.png"
sed "s|^Exec=diffusion-studio|Exec=$exe|" "$here/$id.desktop" > "$data/applications/$id.desktop.tmp"
mv "$data/applications/$id.desktop.tmp" "$data/applications/$id.desktop"
command -v update-desktop-database > /dev/null && update-desktop-database "$data/applications" || true
echo "installed $data/applications/$id.desktop"

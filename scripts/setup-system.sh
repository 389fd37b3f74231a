#!/usr/bin/env bash
# Installs the system packages coachd needs, and only those missing, so a second run does nothing.
set -euo pipefail
python=${1:-}
if [ -z "$python" ]; then
  have="no python3"
  command -v python3 >/dev/null && have=$(python3 --version 2>&1)
  echo "coachd needs Python 3.9 to 3.14; found: $have." \
       "Install python3 (3.9 or newer), or run make PYTHON=/path/to/python3.x." >&2
  exit 1
fi
# postgresql: a gym's shared history and its tests (each starts its own server); chromium and
# chromium-driver: the live page's browser test, and a console screen's kiosk browser.
packages=(espeak-ng libespeak-ng1 libportaudio2 portaudio19-dev ffmpeg alsa-utils libasound2-plugins
          libgl1 libglib2.0-0 gcc systemd postgresql chromium chromium-driver)
# The chosen interpreter's own venv and headers (PyAudio builds against them), which may not be
# the default python3's.
version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
"$python" -c 'import ensurepip' 2>/dev/null || packages+=("python$version-venv")
include=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
[ -f "$include/Python.h" ] || packages+=("python$version-dev")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "coachd set-up: install these system packages with your package manager: ${missing[*]}" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "coachd set-up: installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

#!/usr/bin/env bash
# Installs the system packages coachd needs, and only those missing, so a second run does nothing.
#   setup-system.sh PYTHON                what coachd needs to run (a laptop, a kiosk)
#   setup-system.sh PYTHON --with-tests   and what its tests need (`make test`, CI)
#   add --list to print the packages instead of installing them
set -euo pipefail
python=${1:-}
with_tests=no
list=no
for option in "${@:2}"; do
  case "$option" in
    --with-tests) with_tests=yes ;;
    --list) list=yes ;;
    *) echo "setup-system.sh: unknown option $option (allowed: --with-tests, --list)" >&2; exit 2 ;;
  esac
done
if [ -z "$python" ]; then
  have="no python3"
  command -v python3 >/dev/null && have=$(python3 --version 2>&1)
  echo "coachd needs Python 3.9 to 3.14; found: $have." \
       "Install python3 (3.9 or newer), or run make PYTHON=/path/to/python3.x." >&2
  exit 1
fi
packages=(espeak-ng libespeak-ng1 libportaudio2 portaudio19-dev ffmpeg alsa-utils libasound2-plugins
          libgl1 libglib2.0-0 gcc systemd)
# Tests only: the fleet tests start their own PostgreSQL server, the live page's test drives
# Chromium. A kiosk reaches the gym's server over the network, and a console screen's browser
# is its own choice (docs/kiosk.md).
[ "$with_tests" = no ] || packages+=(postgresql chromium chromium-driver)
# The chosen interpreter's own venv and headers (PyAudio builds against them), which may not be
# the default python3's.
version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
"$python" -c 'import ensurepip' 2>/dev/null || packages+=("python$version-venv")
include=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
[ -f "$include/Python.h" ] || packages+=("python$version-dev")
if [ "$list" = yes ]; then
  echo "${packages[@]}"
  exit 0
fi
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

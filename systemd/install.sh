#!/usr/bin/env bash
# Installs coachd as a service that starts at boot (`make install-service` runs this).
#
#   systemd/install.sh            system service (kiosk without a desktop session), as root:
#                                 - a `coachd` system user in the video and audio groups,
#                                 - coachd installed into its own venv in /opt/coachd/venv
#                                   (not the checkout's .venv: the service runs as `coachd` with
#                                   ProtectHome=yes, so a checkout under /home or /root is out of
#                                   its reach, and a `git pull` must not change a running kiosk),
#                                 - /etc/coachd/coachd.toml from config/coachd.toml if absent,
#                                 - coachd.service and coachd@.service, coachd.service enabled.
#   systemd/install.sh --user     user service for a kiosk with an auto-login desktop (PipeWire):
#                                 runs the checkout's .venv as the logged-in user.
# Options: --prefix DIR (default /opt/coachd), --no-start (install and enable, do not start).
# Running it again upgrades coachd in the venv and keeps an existing configuration.
set -euo pipefail

checkout=$(cd "$(dirname "$0")/.." && pwd)
prefix=/opt/coachd
mode=system
start=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --user) mode=user ;;
    --prefix) prefix=${2:?--prefix needs a folder}; shift ;;
    --no-start) start=no ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (allowed: --user, --prefix DIR, --no-start)" >&2; exit 2 ;;
  esac
  shift
done

systemd_running() { [ -d /run/systemd/system ]; }

systemd_version() { systemctl --version 2>/dev/null | awk 'NR==1 {print $2+0}'; }

if [ "$mode" = user ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "install.sh --user: run it as the desktop user that logs in automatically, not root" >&2
    exit 2
  fi
  coachd_bin="$checkout/.venv/bin/coachd"
  [ -x "$coachd_bin" ] || { echo "install.sh: $coachd_bin is missing; run \`make setup\` first" >&2; exit 1; }
  config_home=${XDG_CONFIG_HOME:-$HOME/.config}
  unit_dir="$config_home/systemd/user"
  mkdir -p "$unit_dir" "$config_home/coachd"
  [ -f "$config_home/coachd/coachd.toml" ] || cp "$checkout/config/coachd.toml" "$config_home/coachd/coachd.toml"
  sed -e "s|%h/coachd/.venv/bin/coachd|$coachd_bin|" \
      -e "s|file:%h/coachd/docs/kiosk.md|file:$checkout/docs/kiosk.md|" \
      "$checkout/systemd/user/coachd.service" > "$unit_dir/coachd.service"
  echo "installed $unit_dir/coachd.service (settings: $config_home/coachd/coachd.toml)"
  if systemctl --user daemon-reload 2>/dev/null; then
    if [ "$start" = yes ]; then systemctl --user enable --now coachd.service; else systemctl --user enable coachd.service; fi
    echo "enabled: it starts with your desktop session; \`journalctl --user -u coachd\` shows its log"
  else
    echo "no user systemd session here: enable it later with \`systemctl --user enable --now coachd\`"
  fi
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  exec sudo bash "$0" --prefix "$prefix" $([ "$start" = no ] && echo --no-start)
fi

# The interpreter the checkout's venv was made with (mediapipe needs Python 3.9-3.12).
python=""
if [ -x "$checkout/.venv/bin/python" ]; then
  python=$("$checkout/.venv/bin/python" -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')
fi
[ -n "$python" ] || { echo "install.sh: no $checkout/.venv; run \`make setup\` first" >&2; exit 1; }

if ! getent passwd coachd >/dev/null; then
  useradd --system --user-group --home-dir /var/lib/coachd --no-create-home \
    --shell /usr/sbin/nologin --comment "coachd running coach" --groups video,audio coachd
  echo "created system user coachd (groups video, audio)"
else
  usermod -a -G video,audio coachd
fi

[ -x "$prefix/venv/bin/python" ] || "$python" -m venv "$prefix/venv"
"$prefix/venv/bin/python" -m pip install --quiet --upgrade pip
"$prefix/venv/bin/python" -m pip install --quiet "$checkout"
# Same version number after a `git pull`: reinstall coachd itself so the new code is used.
"$prefix/venv/bin/python" -m pip install --quiet --no-deps --force-reinstall "$checkout"
install -D -m 0644 "$checkout/docs/kiosk.md" "$prefix/docs/kiosk.md"
echo "installed coachd into $prefix/venv"

install -d -m 0755 /etc/coachd
if [ ! -f /etc/coachd/coachd.toml ]; then
  install -m 0640 -o root -g coachd "$checkout/config/coachd.toml" /etc/coachd/coachd.toml
  echo "installed /etc/coachd/coachd.toml (every setting commented out at its default)"
else
  echo "kept the existing /etc/coachd/coachd.toml"
fi

for unit in coachd.service coachd@.service; do
  sed "s|/opt/coachd|$prefix|g" "$checkout/systemd/$unit" > "/etc/systemd/system/$unit"
  chmod 0644 "/etc/systemd/system/$unit"
  # Exponential restart back-off where systemd knows it (254 and later).
  if [ "$(systemd_version)" -ge 254 ] 2>/dev/null; then
    install -d "/etc/systemd/system/$unit.d"
    printf '[Service]\nRestartSteps=6\nRestartMaxDelaySec=2min\n' > "/etc/systemd/system/$unit.d/backoff.conf"
  fi
done
echo "installed /etc/systemd/system/coachd.service and coachd@.service"

if systemd_running; then
  systemctl daemon-reload
  if [ "$start" = yes ]; then
    systemctl enable coachd.service
    systemctl restart coachd.service  # starts it, or after an upgrade runs the new code
  else
    systemctl enable coachd.service
  fi
  echo "coachd.service enabled; status: systemctl status coachd; log: journalctl -u coachd;" \
       "health: curl -s http://127.0.0.1:9464/healthz"
else
  echo "systemd is not running here (a container?): enable it on the kiosk with" \
       "\`systemctl enable --now coachd\`"
fi

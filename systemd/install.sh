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
# Options: --prefix DIR (default /opt/coachd), --no-start (install and enable, do not start),
#   --dry-run (print every action, change nothing), --uninstall (stop and remove the units, the
#   venv and the `coachd` user; keeps /etc/coachd and the sessions in /var/lib/coachd),
#   --purge (with --uninstall: remove /etc/coachd and /var/lib/coachd too).
# Running it again upgrades coachd in the venv and keeps an existing configuration.
set -euo pipefail

checkout=$(cd "$(dirname "$0")/.." && pwd)
prefix=/opt/coachd
mode=system
start=yes
dry_run=no
action=install
purge=no
while [ $# -gt 0 ]; do
  case "$1" in
    --user) mode=user ;;
    --prefix) prefix=${2:?--prefix needs a folder}; shift ;;
    --no-start) start=no ;;
    --dry-run) dry_run=yes ;;
    --uninstall) action=uninstall ;;
    --purge) purge=yes ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (allowed: --user, --prefix DIR, --no-start," \
            "--dry-run, --uninstall, --purge)" >&2; exit 2 ;;
  esac
  shift
done
if [ "$purge" = yes ] && [ "$action" != uninstall ]; then
  echo "install.sh: --purge goes with --uninstall" >&2
  exit 2
fi

# Every change goes through `run`: with --dry-run it is printed instead of done.
run() {
  if [ "$dry_run" = yes ]; then
    printf 'would run:'; printf ' %q' "$@"; printf '\n'
  else
    "$@"
  fi
}

# What was done; with --dry-run what would have been.
note() {
  if [ "$dry_run" = yes ]; then echo "(dry run, not done) $*"; else echo "$*"; fi
}

# `write FILE` writes its standard input to FILE (printed instead with --dry-run).
write() {
  if [ "$dry_run" = yes ]; then
    echo "would write $1:"; sed 's/^/    /'
  else
    cat > "$1"
  fi
}

systemd_running() { [ -d /run/systemd/system ]; }

systemd_version() { systemctl --version 2>/dev/null | awk 'NR==1 {print $2+0}'; }

if [ "$mode" = user ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "install.sh --user: run it as the desktop user that logs in automatically, not root" >&2
    exit 2
  fi
  config_home=${XDG_CONFIG_HOME:-$HOME/.config}
  unit_dir="$config_home/systemd/user"
  if [ "$action" = uninstall ]; then
    run systemctl --user disable --now coachd.service 2>/dev/null || true
    run rm -f "$unit_dir/coachd.service"
    run systemctl --user daemon-reload 2>/dev/null || true
    if [ "$purge" = yes ]; then
      run rm -rf "$config_home/coachd" "${XDG_STATE_HOME:-$HOME/.local/state}/coachd"
    else
      echo "kept $config_home/coachd and your sessions (--purge removes them)"
    fi
    note "removed the coachd user service"
    exit 0
  fi
  coachd_bin="$checkout/.venv/bin/coachd"
  [ -x "$coachd_bin" ] || { echo "install.sh: $coachd_bin is missing; run \`make setup\` first" >&2; exit 1; }
  run mkdir -p "$unit_dir" "$config_home/coachd"
  [ -f "$config_home/coachd/coachd.toml" ] || run cp "$checkout/config/coachd.toml" "$config_home/coachd/coachd.toml"
  sed -e "s|%h/coachd/.venv/bin/coachd|$coachd_bin|" \
      -e "s|file:%h/coachd/docs/kiosk.md|file:$checkout/docs/kiosk.md|" \
      "$checkout/systemd/user/coachd.service" | write "$unit_dir/coachd.service"
  note "installed $unit_dir/coachd.service (settings: $config_home/coachd/coachd.toml)"
  if [ "$dry_run" = yes ] || systemctl --user daemon-reload 2>/dev/null; then
    if [ "$start" = yes ]; then run systemctl --user enable --now coachd.service; else run systemctl --user enable coachd.service; fi
    note "enabled: it starts with your desktop session; \`journalctl --user -u coachd\` shows its log"
  else
    echo "no user systemd session here: enable it later with \`systemctl --user enable --now coachd\`"
  fi
  exit 0
fi

if [ "$(id -u)" -ne 0 ] && [ "$dry_run" = no ]; then
  exec sudo bash "$0" --prefix "$prefix" $([ "$start" = no ] && echo --no-start) \
    $([ "$action" = uninstall ] && echo --uninstall) $([ "$purge" = yes ] && echo --purge)
fi

if [ "$action" = uninstall ]; then
  for unit in coachd.service coachd@.service; do
    if systemd_running; then run systemctl disable --now "$unit" 2>/dev/null || true; fi
    run rm -rf "/etc/systemd/system/$unit" "/etc/systemd/system/$unit.d"
  done
  if systemd_running; then run systemctl daemon-reload; fi
  run rm -rf "$prefix"
  if getent passwd coachd >/dev/null; then run userdel coachd; fi
  if [ "$purge" = yes ]; then
    run rm -rf /etc/coachd /var/lib/coachd
  else
    echo "kept /etc/coachd and the sessions in /var/lib/coachd (--purge removes them)"
  fi
  note "removed coachd.service, coachd@.service, $prefix and the coachd user"
  exit 0
fi

# The interpreter the checkout's venv was made with, else the newest supported one on the PATH
# (coachd runs on Python 3.9-3.14). Nothing is built in the checkout.
python=""
if [ -x "$checkout/.venv/bin/python" ]; then
  python=$("$checkout/.venv/bin/python" -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')
fi
for candidate in python3.14 python3.13 python3.12 python3.11 python3.10 python3.9 python3; do
  [ -z "$python" ] || break
  command -v "$candidate" >/dev/null 2>&1 &&
    "$candidate" -c 'import sys; sys.exit(not (3, 9) <= sys.version_info[:2] <= (3, 14))' 2>/dev/null &&
    python=$(command -v "$candidate")
done
[ -n "$python" ] || { echo "install.sh: no Python 3.9-3.14 found; install python3 (3.9 or newer)" >&2; exit 1; }
run bash "$checkout/scripts/setup-system.sh" "$python"  # espeak-ng, PortAudio, ffmpeg ...

if ! getent passwd coachd >/dev/null; then
  run useradd --system --user-group --home-dir /var/lib/coachd --no-create-home \
    --shell /usr/sbin/nologin --comment "coachd running coach" --groups video,audio coachd
  note "created system user coachd (groups video, audio)"
else
  run usermod -a -G video,audio coachd
fi

# pip builds the wheel in a temporary copy (pip >= 21.3), never in the checkout.
[ -x "$prefix/venv/bin/python" ] || run "$python" -m venv "$prefix/venv"
run "$prefix/venv/bin/python" -m pip install --quiet --upgrade pip
run "$prefix/venv/bin/python" -m pip install --quiet "$checkout"
# Same version number after a `git pull`: reinstall coachd itself so the new code is used.
run "$prefix/venv/bin/python" -m pip install --quiet --no-deps --force-reinstall "$checkout"
run install -D -m 0644 "$checkout/docs/kiosk.md" "$prefix/docs/kiosk.md"
note "installed coachd into $prefix/venv"

run install -d -m 0755 /etc/coachd
if [ ! -f /etc/coachd/coachd.toml ]; then
  run install -m 0640 -o root -g coachd "$checkout/config/coachd.toml" /etc/coachd/coachd.toml
  note "installed /etc/coachd/coachd.toml (every setting commented out at its default)"
else
  echo "kept the existing /etc/coachd/coachd.toml"
fi

for unit in coachd.service coachd@.service; do
  sed "s|/opt/coachd|$prefix|g" "$checkout/systemd/$unit" | write "/etc/systemd/system/$unit"
  run chmod 0644 "/etc/systemd/system/$unit"
  # Exponential restart back-off where systemd knows it (254 and later).
  if [ "$(systemd_version)" -ge 254 ] 2>/dev/null; then
    run install -d "/etc/systemd/system/$unit.d"
    printf '[Service]\nRestartSteps=6\nRestartMaxDelaySec=2min\n' | write "/etc/systemd/system/$unit.d/backoff.conf"
  fi
done
note "installed /etc/systemd/system/coachd.service and coachd@.service"

if systemd_running; then
  run systemctl daemon-reload
  run systemctl enable coachd.service
  if [ "$start" = yes ]; then
    run systemctl restart coachd.service  # starts it, or after an upgrade runs the new code
  fi
  note "coachd.service enabled; status: systemctl status coachd; log: journalctl -u coachd;" \
       "health: curl -s http://127.0.0.1:9464/healthz"
else
  echo "systemd is not running here (a container?): enable it on the kiosk with" \
       "\`systemctl enable --now coachd\`"
fi

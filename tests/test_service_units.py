"""The systemd units pass `systemd-analyze verify` and keep the properties the kiosk needs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
# Where the units expect coachd; verify insists that ExecStart's binary exists, so the tests
# point it at this venv's coachd, as install.sh does with the real install's path.
PLACEHOLDERS = ("/opt/coachd/venv/bin/coachd", "%h/coachd/.venv/bin/coachd")


def _coachd_binary() -> Path:
    binary = Path(sys.executable).parent / "coachd"
    if not binary.is_file():
        pytest.skip(f"no coachd entry point beside {sys.executable}: run `make setup`")
    return binary


def _render(repo_root: Path, name: str, dest: Path) -> Path:
    text = (repo_root / "systemd" / name).read_text()
    for placeholder in PLACEHOLDERS:
        text = text.replace(placeholder, str(_coachd_binary()))
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / Path(name).name
    path.write_text(text)
    return path


def _verify(unit: Path, user: bool, tmp_path: Path, name: str = "") -> tuple[int, str]:
    assert ANALYZE is not None
    env = dict(os.environ)
    args = [ANALYZE]
    if user:
        runtime = tmp_path / "runtime"
        runtime.mkdir(mode=0o700, exist_ok=True)
        env["XDG_RUNTIME_DIR"] = str(runtime)  # a user manager needs one, even to verify
        args.append("--user")
    target = str(unit.parent / name) if name else str(unit)
    run = subprocess.run(
        [*args, "verify", target], capture_output=True, text=True, env=env, timeout=60
    )
    return run.returncode, run.stdout + run.stderr


def _complaints(output: str, unit: Path) -> list[str]:
    # verify exits 0 on unknown keys and unparsable values, so its messages are checked too.
    return [line for line in output.splitlines() if unit.name.split("@")[0] in line]


@needs_analyze
@pytest.mark.parametrize(
    ("name", "user", "instance"),
    [
        ("coachd.service", False, ""),
        ("coachd@.service", False, ""),
        ("coachd@.service", False, "coachd@treadmill1.service"),
        ("user/coachd.service", True, ""),
    ],
)
def test_units_verify_cleanly(
    repo_root: Path, tmp_path: Path, name: str, user: bool, instance: str
) -> None:
    unit = _render(repo_root, name, tmp_path / "units")
    code, output = _verify(unit, user, tmp_path, instance)
    assert code == 0, output
    assert _complaints(output, unit) == [], output


@needs_analyze
def test_verify_check_catches_a_broken_unit(repo_root: Path, tmp_path: Path) -> None:
    unit = _render(repo_root, "coachd.service", tmp_path / "units")
    unit.write_text(unit.read_text().replace("Type=notify", "Type=notifyy"))
    _, output = _verify(unit, False, tmp_path)
    assert _complaints(output, unit), output


def _settings(path: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    section = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            found.setdefault(f"{section}.{key}", []).append(value)
    return found


@pytest.mark.parametrize("name", ["coachd.service", "coachd@.service"])
def test_system_units_are_notify_watchdog_hardened(repo_root: Path, name: str) -> None:
    unit = _settings(repo_root / "systemd" / name)
    one = {k: v[-1] for k, v in unit.items()}
    assert one["Service.Type"] == "notify" and one["Service.NotifyAccess"] == "main"
    assert one["Service.WatchdogSec"] == "10s"
    assert one["Service.Restart"] == "on-failure" and one["Service.RestartSec"]
    assert "78" in one["Service.RestartPreventExitStatus"].split()
    assert one["Service.User"] == "coachd" and "DynamicUser" not in " ".join(unit)
    assert set(one["Service.SupplementaryGroups"].split()) == {"video", "audio"}
    assert one["Service.ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert "coachd run --config /etc/coachd/" in one["Service.ExecStart"]
    assert one["Service.ProtectSystem"] == "strict" and one["Service.DevicePolicy"] == "closed"
    assert set(unit["Service.DeviceAllow"]) == {"char-video4linux rw", "char-alsa rw"}
    for key in (
        "NoNewPrivileges",
        "ProtectHome",
        "PrivateTmp",
        "ProtectKernelTunables",
        "ProtectControlGroups",
        "LockPersonality",
    ):
        assert one[f"Service.{key}"] == "yes", key
    assert one["Service.SystemCallArchitectures"] == "native"
    assert "AF_INET" in one["Service.RestrictAddressFamilies"].split()
    if name == "coachd@.service":
        assert one["Service.StateDirectory"] == "coachd/%i"
        assert one["Service.ExecStart"].endswith("--config /etc/coachd/%i.toml")
    else:
        assert one["Service.StateDirectory"] == "coachd"


def test_install_script_parses(repo_root: Path) -> None:
    bash = shutil.which("bash")
    assert bash is not None
    run = subprocess.run(
        [bash, "-n", str(repo_root / "systemd" / "install.sh")], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    run = subprocess.run(
        [bash, str(repo_root / "systemd" / "install.sh"), "--bogus"], capture_output=True, text=True
    )
    assert run.returncode == 2 and "unknown option --bogus" in run.stderr


def test_system_setup_keeps_test_packages_off_kiosks(repo_root: Path) -> None:
    """A kiosk or a laptop gets no PostgreSQL server or browser driver; `make test` does."""
    script = str(repo_root / "scripts" / "setup-system.sh")

    def packages(*options: str) -> set[str]:
        run = subprocess.run(
            ["bash", script, sys.executable, *options, "--list"], capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        return set(run.stdout.split())

    for_running, for_tests = packages(), packages("--with-tests")
    test_only = {"postgresql", "chromium", "chromium-driver"}
    assert {"espeak-ng", "libportaudio2", "ffmpeg"} <= for_running
    assert not for_running & test_only
    assert for_tests == for_running | test_only
    bogus = subprocess.run(
        ["bash", script, sys.executable, "--bogus"], capture_output=True, text=True
    )
    assert bogus.returncode == 2 and "unknown option --bogus" in bogus.stderr

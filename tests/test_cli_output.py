"""What the command line prints, on a terminal and on a pipe: progress, the files written,
no native-library banners, JSON listings, and the service installer's dry run."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import shutil
import socket
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import cv2
import pytest
from daemon_harness import child_environment, ffmpeg_path, require_synthetic
from support import REPO, run_coachd

from coachd.errors import EXIT_CONFIG, EXIT_USAGE

SHORT_RUN = "synthetic:?view=side-right&seconds=4"
BANNER = "XNNPACK delegate"


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """`coachd analyze` of a short synthetic run with its output on pipes."""
    require_synthetic()
    ffmpeg_path()
    out = tmp_path_factory.mktemp("analyze")
    json_path, overlay = out / "run.json", out / "run.mp4"
    done = run_coachd(
        "analyze", SHORT_RUN, "--json", str(json_path), "--overlay", str(overlay), timeout=300
    )
    assert done.returncode == 0, done.stderr
    return {"done": done, "json": json_path, "overlay": overlay}


def test_analyze_on_a_pipe_draws_no_progress_and_says_what_it_wrote(
    analysed: dict[str, object],
) -> None:
    done = analysed["done"]
    assert isinstance(done, subprocess.CompletedProcess)
    assert "\r" not in done.stderr
    assert BANNER not in done.stderr
    assert done.stderr.splitlines() == [
        "analysed 120 frames: " + done.stderr.split("frames: ")[1].splitlines()[0],
        f"wrote {analysed['json']} (the analysis JSON)",
        f"wrote {analysed['overlay']} (the overlay video, H.264)",
    ]
    assert json.loads(Path(str(analysed["json"])).read_text())["frames"] == 120


def test_the_overlay_is_browser_playable_h264_and_smaller_than_mpeg4(
    analysed: dict[str, object], tmp_path: Path
) -> None:
    overlay = Path(str(analysed["overlay"]))
    probe = subprocess.run(
        [
            shutil.which("ffprobe") or "ffprobe", "-v", "error", "-select_streams", "v:0",
            "-show_entries", "stream=codec_name,pix_fmt,nb_frames", "-of", "json", str(overlay),
        ],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    stream = json.loads(probe.stdout)["streams"][0]
    assert stream == {"codec_name": "h264", "pix_fmt": "yuv420p", "nb_frames": "120"}
    data = overlay.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # +faststart: plays while downloading
    # The same frames as OpenCV's MPEG-4 Part 2, which the overlay used to be.
    mpeg4 = tmp_path / "mpeg4.mp4"
    reader = cv2.VideoCapture(str(overlay))
    writer: cv2.VideoWriter | None = None
    while True:
        ok, image = reader.read()
        if not ok:
            break
        if writer is None:
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")  # type: ignore[attr-defined]
            writer = cv2.VideoWriter(str(mpeg4), fourcc, 30.0, image.shape[1::-1])
        writer.write(image)
    reader.release()
    assert writer is not None
    writer.release()
    assert overlay.stat().st_size < 0.6 * mpeg4.stat().st_size


def _on_a_terminal(args: list[str], timeout: float = 300) -> tuple[int, str]:
    """Run coachd with stdout and stderr on a pseudo-terminal; its exit status and output."""
    controller, terminal = pty.openpty()
    # 24 rows of 100 columns: a fresh pty is 0x0, in which no bar fits.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "coachd", *args],
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
        cwd=REPO,
        env=child_environment(),
    )
    os.close(terminal)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: coachd exited
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    return proc.wait(timeout=30), b"".join(chunks).decode(errors="replace")


def test_analyze_on_a_terminal_shows_a_progress_bar(tmp_path: Path) -> None:
    require_synthetic()
    status, output = _on_a_terminal(["analyze", SHORT_RUN, "--json", str(tmp_path / "a.json")])
    assert status == 0, output
    assert "\ranalyze: 100%" in output and "| 120/120 [" in output, output
    assert BANNER not in output


def test_cue_lines_on_a_pipe_start_without_a_carriage_return(tmp_path: Path) -> None:
    require_synthetic()
    done = run_coachd(
        "run", "--no-speech", "--source", "synthetic:?view=side-right&seconds=8",
        "--set", f"service.state_dir={json.dumps(str(tmp_path))}",
        "--set", "service.http_port=0",
        "--set", "service.session_start_s=2",
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    cues = [line for line in done.stdout.splitlines() if "greeting" in line]
    assert cues, done.stdout
    assert "\r" not in done.stdout + done.stderr
    assert BANNER not in done.stderr
    assert not any(line != line.rstrip() for line in done.stdout.splitlines())


def test_a_second_instance_names_the_taken_port_and_how_to_choose_another() -> None:
    require_synthetic()
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = run_coachd(
            "run", "--no-speech", "--source", "synthetic:?seconds=2",
            "--set", f"service.http_port={port}",
            timeout=120,
        )  # fmt: skip
    assert done.returncode == EXIT_CONFIG
    [line] = [line for line in done.stderr.splitlines() if line.startswith("coachd:")]
    assert f"port {port} on 127.0.0.1 is taken" in line
    assert f"--set service.http_port={port + 1}" in line and "service.http_port=0" in line


def test_cues_list_needs_no_path_and_speaks_json() -> None:
    table = run_coachd("cues", "list")
    assert table.returncode == 0, table.stderr
    listed = run_coachd("cues", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert data["packs"] and data["packs"][0].endswith("default.toml")
    ids = [cue["id"] for cue in data["cues"]]
    assert "overstride" in ids and all(cue_id in table.stdout for cue_id in ids)
    missing = run_coachd("cues")
    assert missing.returncode == EXIT_USAGE
    assert "required: action" in missing.stderr and "PATH" not in missing.stderr.splitlines()[-1]


def test_a_reader_that_leaves_early_gets_no_traceback() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "coachd", "cues", "list", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env=child_environment(),
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # like `| head -1`
    error = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in error and "internal error" not in error


def test_check_json_lists_every_finding_and_the_verdict() -> None:
    done = run_coachd("check", "--json", timeout=180)
    data = json.loads(done.stdout)
    assert data["ready"] == (done.returncode == 0)
    assert data["verdict"].startswith("READY" if data["ready"] else "NOT READY")
    items = [finding["item"] for finding in data["findings"]]
    assert items[:3] == ["config", "pose model", "video files"]
    assert all(f["status"] in ("OK", "MISSING", "ERROR") for f in data["findings"])
    assert BANNER not in done.stderr


# --- per-user settings -------------------------------------------------------------------


def test_the_user_config_file_sits_between_the_system_file_and_the_environment(
    tmp_path: Path,
) -> None:
    user_file = tmp_path / "xdg" / "coachd" / "coachd.toml"
    user_file.parent.mkdir(parents=True)
    user_file.write_text("[camera]\nfps = 25\nwidth = 640\n")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "COACHD_CAMERA__WIDTH": "800"}
    done = run_coachd("config", "show", env=env)
    assert done.returncode == 0, done.stderr
    assert f"# config file: {user_file} (read)" in done.stdout
    lines = done.stdout.splitlines()
    assert any(line.startswith("fps = 25 ") and f"file {user_file}" in line for line in lines)
    assert any(
        line.startswith("width = 800 ") and "env COACHD_CAMERA__WIDTH" in line for line in lines
    )
    # --config names the one file to read instead.
    other = tmp_path / "other.toml"
    other.write_text("")
    done = run_coachd("config", "show", "--config", str(other), env=env)
    assert any(line.startswith("fps = 30 ") for line in done.stdout.splitlines())


def test_without_xdg_config_home_the_user_file_is_in_home(tmp_path: Path) -> None:
    user_file = tmp_path / ".config" / "coachd" / "coachd.toml"
    user_file.parent.mkdir(parents=True)
    user_file.write_text("[camera]\nfps = 24\n")
    clean = {k: v for k, v in os.environ.items() if k != "XDG_CONFIG_HOME"}
    done = subprocess.run(
        [sys.executable, "-m", "coachd", "config", "show"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
        env={**child_environment(clean), "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert any(line.startswith("fps = 24 ") for line in done.stdout.splitlines())


def test_config_show_prints_the_resolved_state_directory(tmp_path: Path) -> None:
    done = run_coachd("config", "show", env={"XDG_STATE_HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    state = tmp_path / "coachd"
    assert f"# state directory: {state}" in done.stdout
    assert f"# sessions database: {state / 'sessions.sqlite'}" in done.stdout
    [line] = [line for line in done.stdout.splitlines() if line.startswith("state_dir = ")]
    assert line.endswith(f"resolves to {state}")


# --- the service installer ---------------------------------------------------------------

INSTALL = REPO / "systemd" / "install.sh"


def _installer(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(INSTALL), *args], capture_output=True, text=True, timeout=120
    )


def _system_state(prefix: Path) -> dict[str, bool]:
    paths = [
        prefix,
        Path("/etc/systemd/system/coachd.service"),
        Path("/etc/coachd/coachd.toml"),
        Path("/var/lib/coachd"),
    ]
    users = subprocess.run(["getent", "passwd", "coachd"], capture_output=True).returncode == 0
    return {**{str(p): p.exists() for p in paths}, "user coachd": users}


def test_install_dry_run_prints_every_action_and_changes_nothing(tmp_path: Path) -> None:
    prefix = tmp_path / "opt"
    before = _system_state(prefix)
    done = _installer("--dry-run", "--prefix", str(prefix))
    assert done.returncode == 0, done.stderr
    assert _system_state(prefix) == before
    out = done.stdout
    assert "would run: bash " in out and "setup-system.sh" in out
    assert f"-m venv {prefix}/venv" in out
    assert f"{prefix}/venv/bin/python -m pip install --quiet {REPO}" in out
    assert "would write /etc/systemd/system/coachd.service:" in out
    assert f"ExecStart={prefix}/venv/bin/coachd run" in out
    assert "would write /etc/systemd/system/coachd@.service:" in out
    assert not (REPO / ".venv").exists() or (REPO / ".venv").stat().st_uid == os.stat(REPO).st_uid


def test_uninstall_dry_run_removes_units_venv_and_user_and_keeps_data(tmp_path: Path) -> None:
    prefix = tmp_path / "opt"
    prefix.mkdir()
    done = _installer("--uninstall", "--dry-run", "--prefix", str(prefix))
    assert done.returncode == 0, done.stderr
    assert prefix.is_dir()
    out = done.stdout
    assert "would run: rm -rf /etc/systemd/system/coachd.service" in out
    assert "would run: rm -rf /etc/systemd/system/coachd@.service" in out
    assert f"would run: rm -rf {prefix}\n" in out
    assert "kept /etc/coachd and the sessions in /var/lib/coachd" in out
    assert "/var/lib/coachd" not in out.split("kept")[0]
    purge = _installer("--uninstall", "--purge", "--dry-run", "--prefix", str(prefix))
    assert "would run: rm -rf /etc/coachd /var/lib/coachd" in purge.stdout
    lone = _installer("--purge")
    assert lone.returncode == 2 and "--purge goes with --uninstall" in lone.stderr


def test_make_install_service_builds_nothing_in_the_checkout() -> None:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    # As a person types it: not inside `make test`, whose flags and ARGS a child make inherits.
    env = {
        k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "ARGS")
    }
    done = subprocess.run(
        [make, "-n", "install-service"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "bash systemd/install.sh"

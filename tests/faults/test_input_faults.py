"""Bad text files, bad settings values and secrets, through the real command line and daemon.

A file that is not UTF-8 stops a start with exit 78 and one line naming file, line and byte,
and is refused on SIGHUP while the daemon goes on coaching; camera URL credentials never
reach logs, `config show`, sd_notify STATUS, /metrics or /healthz.
"""

from __future__ import annotations

import json
import re
import signal
import time
from functools import partial
from pathlib import Path

import pytest
from daemon_harness import (
    REPO,
    RUNNER,
    STARTUP_S,
    free_port,
    require_synthetic,
    start_daemon,
    wait_until,
)
from support import run_coachd

from coachd.errors import EXIT_CONFIG

LATIN1_COMMENT = "# caf\xe9 au lait\n".encode("latin-1")  # one byte 0xE9, invalid UTF-8
BOM = b"\xef\xbb\xbf"
DEFAULT_PACK = (REPO / "cues" / "default.toml").read_bytes()
# The comment is the second line; "caf" puts the bad byte at column 6.
BAD_BYTE = re.compile(r"line 2, column 6: byte 0xE9 is not UTF-8.*save the file as UTF-8")


def one_line_error(done: object) -> str:
    """The single `coachd: ...` line on stderr of a finished command."""
    stderr: str = done.stderr  # type: ignore[attr-defined]
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("coachd: ") and "Traceback" not in stderr
    return lines[0]


def write(path: Path, *parts: bytes) -> Path:
    path.write_bytes(b"".join(parts))
    return path


def pack_setting(path: Path) -> str:
    return f"engine.packs={json.dumps([str(path)])}"


# --- text files that are not UTF-8 ---------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["run", "--no-speech", "--quiet", "--source", RUNNER], ["config", "show"]],
    ids=["run", "config show"],
)
def test_a_latin1_byte_in_a_config_comment_is_exit_78_naming_file_line_and_byte(
    tmp_path: Path, command: list[str]
) -> None:
    config = write(tmp_path / "coachd.toml", b"[camera]\n", LATIN1_COMMENT, b"fps = 30\n")
    done = run_coachd(*command, "--config", str(config))
    line = one_line_error(done)
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert line.startswith(f"coachd: config error: {config}: ")
    assert BAD_BYTE.search(line), line


def test_a_latin1_byte_in_a_cue_pack_is_exit_78_naming_file_line_and_byte(
    tmp_path: Path,
) -> None:
    pack = write(tmp_path / "gym.toml", b"# gym pack\n", LATIN1_COMMENT, DEFAULT_PACK)
    empty = write(tmp_path / "empty.toml", b"")
    runs = {
        "run": run_coachd(
            "run",
            "--config",
            str(empty),
            "--no-speech",
            "--quiet",
            "--source",
            RUNNER,
            "--set",
            pack_setting(pack),
            "--set",
            "service.http_port=0",
            "--set",
            f"service.state_dir={json.dumps(str(tmp_path / 'state'))}",
        ),
        "cues list": run_coachd(
            "cues", "list", "--config", str(empty), "--set", pack_setting(pack)
        ),
        "cues validate": run_coachd("cues", "validate", str(pack)),
    }
    for name, done in runs.items():
        line = one_line_error(done)
        assert done.returncode == EXIT_CONFIG, (name, done.stderr)
        assert line.startswith(f"coachd: cue pack error: {pack}: "), (name, line)
        assert BAD_BYTE.search(line), (name, line)


def test_a_utf8_bom_is_accepted_in_config_and_pack(tmp_path: Path) -> None:
    pack = write(tmp_path / "gym.toml", BOM, "# café\n".encode(), DEFAULT_PACK)
    config = write(
        tmp_path / "coachd.toml",
        BOM,
        b"[camera]\nfps = 25\n[engine]\npacks = ",
        json.dumps([str(pack)]).encode(),
        b"\n",
    )
    shown = run_coachd("config", "show", "--config", str(config))
    listed = run_coachd("cues", "list", "--config", str(config))
    assert shown.returncode == 0, shown.stderr
    assert re.search(rf"^fps = 25 +# file {re.escape(str(config))}$", shown.stdout, re.M)
    assert listed.returncode == 0, listed.stderr
    assert f"# packs: {pack}" in listed.stdout


def test_a_utf16_file_is_named_as_such(tmp_path: Path) -> None:
    config = write(tmp_path / "coachd.toml", "[camera]\nfps = 25\n".encode("utf-16"))
    done = run_coachd("config", "show", "--config", str(config))
    assert done.returncode == EXIT_CONFIG
    assert "is UTF-16" in one_line_error(done)


def test_sighup_with_a_bad_file_is_refused_and_coaching_goes_on(tmp_path: Path) -> None:
    """The kiosk's config or pack is saved as Latin-1 and `systemctl reload` sent: the daemon
    keeps its settings and keeps coaching; a fixed file on the next reload is taken."""
    require_synthetic()
    daemon = start_daemon(tmp_path, RUNNER)
    config = tmp_path / "empty.toml"  # the --config start_daemon gave the daemon
    bad_pack = write(tmp_path / "bad_pack.toml", b"# gym pack\n", LATIN1_COMMENT, DEFAULT_PACK)
    good_pack = write(tmp_path / "good_pack.toml", "# café\n".encode(), DEFAULT_PACK)

    def frames() -> float:
        return daemon.metric("coachd_frames_tracked_total", 0.0)

    def tracked_beyond(count: float) -> bool:
        return frames() > count

    def reload(text: bytes) -> float:
        config.write_bytes(text)
        sent = time.monotonic()
        daemon.proc.send_signal(signal.SIGHUP)
        return sent

    def ready_status_since(t: float, text: str) -> bool:
        return any(
            m.t >= t and m.fields.get("READY") == "1" and text in m.fields.get("STATUS", "")
            for m in daemon.notify.messages
        )

    try:
        daemon.wait_ready(STARTUP_S)
        tracking = wait_until(lambda: frames() > 0, 30.0)
        outcomes: list[tuple[str, bool, bool, bool]] = []
        for name, text in (
            ("latin-1 config", b"[engine]\n" + LATIN1_COMMENT + b"min_gap_s = 9.0\n"),
            ("latin-1 pack", f"[engine]\npacks = {json.dumps([str(bad_pack)])}\n".encode()),
        ):
            sent = reload(text)
            refused = wait_until(partial(ready_status_since, sent, "reload refused"), 20.0)
            before = frames()
            still_tracking = wait_until(partial(tracked_beyond, before + 10), 20.0)
            healthy = wait_until(lambda: daemon.healthz() == 200, 10.0)
            outcomes.append((name, refused, still_tracking, healthy))
        sent = reload(BOM + f"[engine]\npacks = {json.dumps([str(good_pack)])}\n".encode())
        taken = wait_until(lambda: ready_status_since(sent, "settings reloaded"), 20.0)
        alive = daemon.proc.poll() is None
        code = daemon.stop()
    finally:
        daemon.cleanup()
    output = daemon.output()
    assert tracking, output[-2000:]
    for name, refused, still_tracking, healthy in outcomes:
        assert refused and still_tracking and healthy, (name, output[-3000:])
    refusals = [line for line in output.splitlines() if "reload refused" in line]
    assert len(refusals) == 2, refusals
    assert re.search(rf"config error: {re.escape(str(config))}: .*0xE9", refusals[0])
    assert re.search(rf"cue pack error: {re.escape(str(bad_pack))}: .*0xE9", refusals[1])
    assert all(BAD_BYTE.search(line) for line in refusals), refusals
    assert taken and alive, output[-3000:]
    assert "settings and cue packs reloaded" in output
    assert code == 0, output[-2000:]


# --- secrets in camera URLs ----------------------------------------------------------------

PASSWORD = "p@ss/w:rd"
QUERY_SECRETS = ("user=u&", "pwd=secret", "token=t")


def secret_url(port: int) -> str:
    return f"http://user:{PASSWORD}@127.0.0.1:{port}/cam.mjpg?user=u&pwd=secret&token=t"


def assert_no_secrets(where: str, text: str, port: int) -> None:
    for secret in (PASSWORD, "p@ss", "w:rd", "user:", "secret", *QUERY_SECRETS):
        assert secret not in text, f"{secret!r} in {where}: {text[-2000:]}"


def test_camera_url_credentials_never_reach_logs_status_metrics_or_config_show(
    tmp_path: Path,
) -> None:
    port = free_port()  # nobody listens: the daemon logs its reconnect attempts
    url = secret_url(port)
    shown = run_coachd("config", "show", "--set", f"camera.source={json.dumps(url)}")
    assert shown.returncode == 0, shown.stderr
    assert_no_secrets("config show", shown.stdout + shown.stderr, port)
    assert f"127.0.0.1:{port}/cam.mjpg" in shown.stdout

    daemon = start_daemon(tmp_path, url, ["camera.open_timeout_s=0.5", "camera.reconnect_max_s=1"])
    try:
        daemon.wait_ready(STARTUP_S)
        retried = wait_until(lambda: daemon.output().count("retrying in") >= 2, 40.0)
        metrics = daemon.http("/metrics")[1].decode()
        health = daemon.http("/healthz")[1].decode()
        code = daemon.stop()
    finally:
        daemon.cleanup()
    output = daemon.output()
    statuses = "\n".join(daemon.notify.statuses())
    assert retried, output[-2000:]
    assert code == 0, output[-2000:]
    for where, text in (
        ("daemon output", output),
        ("sd_notify STATUS", statuses),
        ("/metrics", metrics),
        ("/healthz", health),
    ):
        assert_no_secrets(where, text, port)
    # What is left still says which camera: scheme, host, port, path and parameter names.
    assert f"http://***@127.0.0.1:{port}/cam.mjpg?user=***&pwd=***&token=***" in output
    assert f"127.0.0.1:{port}/cam.mjpg" in statuses
    assert "127.0.0.1" in health


# --- settings values -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "key", "allowed"),
    [
        ("[pose]\ntreadmill_region = [0.9, 0.9, 0.1, 0.1]\n", "pose.treadmill_region", "x0 < x1"),
        ("[pose]\ntreadmill_region = [0, 0, 5, 5]\n", "pose.treadmill_region", "<= 1"),
        ('[speech]\nenabled = "yes"\n', "speech.enabled", "true or false"),
        ("[camera]\nmirror = 1\n", "camera.mirror", "true or false"),
    ],
    ids=["inverted region", "region outside the image", "enabled yes", "mirror 1"],
)
def test_bad_region_and_non_boolean_flags_are_exit_78_with_one_line(
    tmp_path: Path, toml: str, key: str, allowed: str
) -> None:
    config = write(tmp_path / "coachd.toml", toml.encode())
    done = run_coachd("config", "show", "--config", str(config))
    line = one_line_error(done)
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert f"config error: {key} = " in line and f"(file {config})" in line, line
    assert allowed in line.partition("):")[2], line


def test_flags_still_take_true_and_false_from_set_and_the_environment() -> None:
    done = run_coachd(
        "config",
        "show",
        "--set",
        "speech.enabled=false",
        "--set",
        "pose.treadmill_region=[0.1, 0.2, 0.9, 0.95]",
        env={"COACHD_CAMERA__MIRROR": "true"},
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"^enabled = false +# command line$", done.stdout, re.M)
    assert re.search(r"^mirror = true +# env COACHD_CAMERA__MIRROR$", done.stdout, re.M)
    for how, args, env in (
        ("--set", ["--set", "speech.enabled=yes"], {}),
        ("env", [], {"COACHD_SPEECH__ENABLED": "yes"}),
    ):
        refused = run_coachd("config", "show", *args, env=env)
        assert refused.returncode == EXIT_CONFIG, (how, refused.stderr)
        assert "speech.enabled" in one_line_error(refused), how

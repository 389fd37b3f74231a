"""The coaching daemon: wires every stage together and keeps it running unattended.

Main thread: signals, sd_notify (READY, WATCHDOG, STATUS, STOPPING), status line.
Capture and tracker threads (coachd.pipeline): frames -> pose -> the coaching chain
(coachd.chain: gait -> sessions and cues), whose listeners store, speak, count and record.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import FrameType
from typing import Callable, Optional

from coachd.capture import FrameSource, open_source
from coachd.capture.open import DEMO_REACTION_S, is_demo, source_probe, synthetic_source_class
from coachd.chain import CoachingChain
from coachd.coach import CueEngine, load_packs
from coachd.coach.coaching import Coaching, Stopped
from coachd.coach.programs import RetroProgress
from coachd.coach.sessions import GREETING_ID, SessionTracker, runner_greeting
from coachd.errors import CoachdError, SourceError
from coachd.gait import GaitAnalyzer
from coachd.messages import Cue
from coachd.pipeline import LivePipeline, PipelineSnapshot, every_nth
from coachd.pose import create_tracker
from coachd.redact import redact
from coachd.service.fleet import KioskFleet
from coachd.service.health import ComponentHealth, HealthServer, Metrics
from coachd.service.listeners import (
    DemoRunnerListener,
    MetricsListener,
    RecorderListener,
    SessionSavedNotice,
    SpeakerListener,
    StoreListener,
)
from coachd.service.live import LiveHub, LiveListener, LivePage, live_status, page_info
from coachd.service.notify import Notifier
from coachd.service.recording import SessionRecorder
from coachd.service.report import session_routes
from coachd.service.runners import BASELINE_STATE, RunnerProfile
from coachd.service.store import DB_NAME, keep_files_private, state_directory
from coachd.service.store_writer import StoreWriter
from coachd.service.terminal import STOP_KEYS, TerminalKeys
from coachd.settings import LoadedSettings, Settings
from coachd.speech import Speaker

log = logging.getLogger(__name__)

SettingsLoader = Callable[[], LoadedSettings]
# At stop, time to write what waits for the database (TimeoutStopSec is 15 s).
STORE_CLOSE_S = 4.0
# At stop mid-session, time to say the summary (with the above, inside TimeoutStopSec).
SUMMARY_SPEAK_S = 8.0
# The demo runner's warm-up: long enough for a baseline, short enough for a first minute.
DEMO_WARMUP_S = 10.0
DEMO_NOTICE = (
    "demo: no camera found, so this is the demo runner. It overstrides and, scripted, lands "
    f"under its hips {DEMO_REACTION_S:.0f} s after the coach tells it. "
    f"Demo warm-up: {DEMO_WARMUP_S:.0f} s instead of a minute."
)
DEMO_GREETING = f"This is a demo, with a {DEMO_WARMUP_S:.0f} second warm-up instead of a minute."


@dataclass(frozen=True)
class RunOptions:
    speech_log: Optional[Path] = None
    quiet: bool = False  # no status line on the terminal
    open_page: bool = False  # open the live page in the desktop's browser, when there is one


def open_on_desktop(url: str) -> bool:
    """Open `url` with xdg-open when a desktop session is there (no wait, no output)."""
    opener = shutil.which("xdg-open")
    desktop = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if not desktop or opener is None:
        return False
    subprocess.Popen(
        [opener, url],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return True


class Daemon:
    """One coaching process: open everything, run until told to stop or the source ends."""

    def __init__(self, load: SettingsLoader, options: RunOptions) -> None:
        self._load = load
        self._options = options
        loaded = load()
        self.settings = loaded.settings
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._problem_reported = threading.Event()
        self._reconnects_seen = 0
        self._notifier = Notifier.from_environment()

        pack = load_packs(self.settings.engine)  # a broken pack stops the start here
        keep_files_private()
        source = self._first_source()  # before the slow parts: a bad source exits at once
        self._demo = is_demo(self.settings.camera.source, source)
        self.settings = self._for_demo(self.settings)
        self._engine = CueEngine(self.settings.engine, pack)
        self._state_dir = state_directory(self.settings.service)
        # Coaching never waits on storage: an unusable folder or database is reported
        # and retried by the writer, which creates the folder (0700) when it can.
        self._fleet = KioskFleet(self.settings, self._state_dir, self._state_dir / DB_NAME)
        self._store = StoreWriter(
            self._state_dir / DB_NAME,
            runner=self.settings.service.runner_profile,
            kiosk=self._fleet.kiosk,
        )
        self._store.start()
        self._store_drops_seen = (0, 0)
        self.metrics = Metrics(kiosk=self._fleet.kiosk)
        self._health: Optional[HealthServer] = None
        if self.settings.service.http_port:
            self._health = HealthServer(
                self.settings.service,
                self.metrics,
                frames_flowing=self._frames_flowing,
                components=self._component_health,
            )
        cache_dir = Path(self.settings.speech.cache_dir or self._state_dir / "voice-cache")
        # The daemon prints every cue as it is decided, so the speaker's printed fallback
        # would only repeat it.
        self._speaker = Speaker(
            self.settings.speech,
            cache_dir,
            options.speech_log,
            printer=lambda text: None,
            on_outcome=self._cue_outcome,
        )
        self._source_name = source.describe() if source else redact(self.settings.camera.source)
        fps = source.nominal_fps if source else float(self.settings.camera.fps)
        self._tracker = create_tracker(self.settings.pose, fps=fps)
        sessions = SessionTracker(
            self.settings.service,
            greeting=self._fleet.greeting,
            greeting_note=DEMO_GREETING if self._demo else "",
        )
        coaching = Coaching(self._engine, sessions, self._start_engine_session)
        self._chain = CoachingChain(GaitAnalyzer(self.settings.gait, fps=fps), coaching)
        profile = self.settings.service.runner_profile
        store = StoreListener(
            self._store, lambda: self._fleet.runner(profile), lambda: self._engine.baseline.values
        )
        self._store_listener = store
        self._chain.add_listener(store)
        if self._fleet.qr_listener is not None:
            self._chain.add_listener(self._fleet.qr_listener)
        self._recorder: Optional[SessionRecorder] = None
        if self.settings.service.record:
            self._recorder = SessionRecorder(
                self._state_dir / "recordings", fps, self.settings.service.blur_faces
            )
            self._chain.add_listener(RecorderListener(self._recorder, lambda: store.session_key))
        self._chain.add_listener(MetricsListener(self.metrics, self._health))
        self._said = SpeakerListener(self._speaker, print_cues=not options.quiet)
        self._chain.add_listener(self._said)
        if self._demo and isinstance(source, synthetic_source_class()):
            self._chain.add_listener(DemoRunnerListener(source.fix_after, DEMO_REACTION_S))
        if not options.quiet:
            notice = SessionSavedNotice(lambda: store.session_key, self._page_url())
            self._chain.add_listener(notice)
        self._live: Optional[LiveHub] = None  # the live page's state, when there is a server
        if self._health is not None:
            show_video = self.settings.ui.show_video
            self._live = LiveHub(page_info(show_video))
            self._chain.add_listener(LiveListener(self._live, show_video))
            page = LivePage(self._live, self._stop_pressed, show_video)
            for (method, path), route in page.routes().items():
                self._health.add_route(method, path, route)
            for path, route in session_routes(self._state_dir / DB_NAME, self._cue_metrics).items():
                self._health.add_route("GET", path, route)
        self._pipeline = LivePipeline(
            source,
            reopen=self._open_source,
            tracker=self._tracker,
            consume=lambda frame, tracked: self._chain.feed(tracked, frame.image),
            reconnect_max_s=self.settings.camera.reconnect_max_s,
            on_source_fault=self._on_source_fault,
            probe=source_probe(self.settings.camera.source),
            on_rate=self._on_rate,
        )

    def _for_demo(self, settings: Settings) -> Settings:
        """The demo runner's settings: a short warm-up, so the first minute coaches."""
        if not self._demo:
            return settings
        engine = settings.engine.model_copy(update={"warmup_s": DEMO_WARMUP_S})
        return settings.model_copy(update={"engine": engine})

    def _cue_metrics(self) -> dict[str, tuple[str, ...]]:
        """Which metrics each cue is about, for the report pages (the pack now in use)."""
        return {rule.id: tuple(rule.metrics) for rule in self._engine.pack.rules}

    def _page_url(self) -> Optional[str]:
        """The live server's address (sessions are at /sessions/N), or None when it is off."""
        service = self.settings.service
        if not service.http_port:
            return None
        host = "127.0.0.1" if service.http_host in ("0.0.0.0", "::", "") else service.http_host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{service.http_port}"

    def _open_source(self) -> FrameSource:
        return open_source(self.settings.camera.source, self.settings.camera, realtime=True)

    def _first_source(self) -> Optional[FrameSource]:
        """The source if it opens now; else None and the pipeline keeps trying (a kiosk may
        boot before its camera is plugged in: that is no reason to exit). A permanent fault
        (a bad file or source string) is raised: it would never heal by waiting."""
        try:
            return self._open_source()
        except SourceError as exc:
            if exc.permanent:
                raise
            log.warning("%s; waiting for it", exc)
            return None

    def _stop_pressed(self) -> Stopped:
        """The runner's STOP (the page's button, a key): a retro drill, else the session."""
        stopped = self._chain.stop(time.monotonic())
        log.info("STOP: %s", "nothing to stop" if stopped == "nothing" else f"{stopped} ended")
        return stopped

    def _frames_flowing(self) -> bool:
        return self._pipeline.frames_flowing(within_s=2.0)

    def _component_health(self) -> dict[str, ComponentHealth]:
        """What /healthz reports per part of the kiosk (read from the HTTP thread)."""
        parts = {
            "camera": self._camera_health(),
            "pose": self._pose_health(),
            "audio": self._audio_health(),
            "store": self._store_health(),
        }
        server = self._fleet.server_health()
        if server is not None:
            parts["server"] = server
        return parts

    def _camera_health(self) -> ComponentHealth:
        snapshot = self._pipeline.snapshot()
        if snapshot.state.startswith("reconnecting"):
            return ComponentHealth("reconnecting", snapshot.last_error)
        return ComponentHealth()

    def _pose_health(self) -> ComponentHealth:
        if not self._pipeline.frames_flowing(within_s=2.0):
            return ComponentHealth("idle", "no frames tracked in the last 2 s")
        return ComponentHealth()

    def _audio_health(self) -> ComponentHealth:
        speech = self._speaker.stats
        state = speech.device_state
        if state in ("ok", "disabled"):
            return ComponentHealth()
        why = f": {speech.last_error}" if speech.last_error else ""
        return ComponentHealth(state, f"audio output {state}{why}")

    def _store_health(self) -> ComponentHealth:
        status = self._store.status
        if status.state == "ok":
            return ComponentHealth()
        return ComponentHealth(
            status.state,
            f"sessions database {self._store.path}: {status.reason}; "
            f"{status.pending_strides} strides wait in memory",
        )

    # --- the main thread -------------------------------------------------------------

    def run(self) -> int:
        """Coach until SIGTERM/SIGINT or the end of a finite source; returns the exit code."""
        self._install_signal_handlers()
        self._speaker.start(self._engine.all_phrases())
        if self._health is not None:
            self._health.start()
        self._fleet.start(self._runner_signed_in)
        self._pipeline.start()
        log.info("coaching from %s", self._source_name)
        if self._demo and not self._options.quiet:
            print(DEMO_NOTICE, flush=True)
        if self._health is not None:
            url = f"{self._page_url()}/"
            print(f"coachd: live page on {url}", flush=True)
            if self._options.open_page:
                open_on_desktop(url)
        keys = TerminalKeys.open()
        if keys is not None and not self._options.quiet:
            print("coachd: press s (or space) to STOP a drill or the session", flush=True)
        try:
            return self._coach(keys)
        finally:
            if keys is not None:
                keys.close()

    def _coach(self, keys: Optional[TerminalKeys]) -> int:
        self._notifier.ready(f"waiting for a runner on {self._source_name}")
        ping_every = self._notifier.watchdog_interval() or 1.0
        next_ping = 0.0
        while not self._stop.is_set():
            if keys is None:
                self._stop.wait(0.25)
            elif STOP_KEYS.intersection(keys.read(0.25)):
                self._stop_pressed()
            if self._reload.is_set():
                self._reload.clear()
                self._reload_settings()
            if self._problem_reported.is_set():
                self._problem_reported.clear()
                self._chain.report_problem(time.monotonic())
            self._chain.tick(time.monotonic())
            snapshot = self._pipeline.snapshot()
            self._publish(snapshot)
            now = time.monotonic()
            if now >= next_ping and self._pipeline.healthy(within_s=max(2.0, ping_every * 2)):
                self._notifier.watchdog()
                next_ping = now + ping_every
            if self._pipeline.ended.is_set():
                break
        code = self._shutdown(ended=self._pipeline.ended.is_set())
        if self._pipeline.failure is not None:
            raise self._pipeline.failure  # a file that broke mid-way: its one line, exit 1
        return code

    def _install_signal_handlers(self) -> None:
        def stop(signum: int, frame: Optional[FrameType]) -> None:
            self._stop.set()

        def reload(signum: int, frame: Optional[FrameType]) -> None:
            self._reload.set()

        def problem(signum: int, frame: Optional[FrameType]) -> None:
            # A kiosk has no keyboard: a button or remote can send SIGUSR1 for "pain / balance".
            self._problem_reported.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)
        signal.signal(signal.SIGUSR1, problem)

    def _publish(self, snapshot: PipelineSnapshot) -> None:
        self.metrics.update_pipeline(snapshot)
        if not self._pipeline.frames_flowing(within_s=2.0):
            self.metrics.set_runner_present(False)  # with no frames, nobody is seen
        if snapshot.reconnects > self._reconnects_seen:
            self.metrics.inc_camera_reconnects(snapshot.reconnects - self._reconnects_seen)
            self._reconnects_seen = snapshot.reconnects
        speech = self._speaker.stats
        self.metrics.set_audio_state(speech.device_state)
        self.metrics.set_voice_cache_bytes(speech.cache_bytes)
        self._publish_store()
        self._fleet.publish(self.metrics)
        if self._live is not None:
            page_status = live_status(self._chain.in_session, self._component_health())
            self._live.publish("status", page_status)
        status = self._status_text(snapshot)
        self._notifier.status(status)
        if not self._options.quiet and sys.stderr.isatty():
            print(f"\r{status:<78}", end="", file=sys.stderr, flush=True)

    def _publish_store(self) -> None:
        store = self._store.status
        self.metrics.set_store_state(store.state)
        self.metrics.set_store_pending_strides(store.pending_strides)
        strides_seen, cues_seen = self._store_drops_seen
        self.metrics.inc_store_dropped("stride", store.dropped_strides - strides_seen)
        self.metrics.inc_store_dropped("cue", store.dropped_cues - cues_seen)
        self._store_drops_seen = (store.dropped_strides, store.dropped_cues)

    def _status_text(self, snapshot: PipelineSnapshot) -> str:
        if snapshot.state.startswith("reconnecting"):
            return f"camera lost, {snapshot.state}: {snapshot.last_error}"[:200]
        rate = f"{snapshot.fps:.1f} fps"
        if snapshot.rate_divisor > 1:
            rate += f" (CPU busy: tracking {every_nth(snapshot.rate_divisor)})"
        if self._chain.in_session:
            return f"coaching, {rate}"
        return f"waiting for a runner, {rate}"

    def _reload_settings(self) -> None:
        """SIGHUP: new settings and cue packs; a bad file is reported and the running ones stay."""
        self._notifier.reloading()
        try:
            settings = self._for_demo(self._load().settings)
            pack = load_packs(settings.engine)
        except CoachdError as exc:
            log.error("reload refused, keeping the running settings: %s", exc)
            self._notifier.ready("reload refused: " + str(exc)[:150])
            return
        self._chain.reload(settings.engine, pack)
        restart_needed = [
            section
            for section in ("camera", "pose", "service")
            if getattr(settings, section) != getattr(self.settings, section)
        ]
        if restart_needed:
            log.warning("changed [%s] settings take effect at restart", ", ".join(restart_needed))
        self.settings = settings
        log.info("settings and cue packs reloaded")
        self._notifier.ready("settings reloaded")

    def _on_source_fault(self, error: str, retry_in_s: float) -> None:
        self._notifier.status(f"camera lost, retrying in {retry_in_s:.0f} s")

    def _shutdown(self, ended: bool) -> int:
        self._notifier.stopping()
        if self._health is not None:
            self._health.set_stopping()
        self._pipeline.stop(timeout=0.8)
        summing_up = self._chain.in_session
        # The runner hears and reads their summary whether the source ended or they stopped.
        self._chain.finish(time.monotonic())
        self._chain.abandon()
        self._speaker.close(finish_current=True, timeout=SUMMARY_SPEAK_S if summing_up else 0.8)
        if self._health is not None:
            self._health.stop()
        self._tracker.close()
        if self._recorder is not None:
            self._recorder.close()
        self._store.close(timeout=STORE_CLOSE_S)
        self._fleet.close()
        self._notifier.close()
        snapshot = self._pipeline.snapshot()
        if not self._options.quiet and sys.stderr.isatty():
            print(file=sys.stderr)
        log.info("%s", self._summary_line(snapshot, ended))  # for the operator, not the runner
        return 0

    def _summary_line(self, s: PipelineSnapshot, ended: bool) -> str:
        how = "ended" if ended else "stopped"
        if s.frames_tracked == 0:  # no timings to give
            return f"coachd: {self._source_name} {how}: no frames tracked"
        return (
            f"coachd: {self._source_name} {how}: {s.frames_tracked} frames tracked, "
            f"{s.frames_dropped} dropped ({100 * s.dropped_fraction:.1f}%), "
            f"glass-to-landmarks p50 {s.latency_ms_p50:.0f} ms p95 {s.latency_ms_p95:.0f} ms, "
            f"pose p50 {s.pose_ms_p50:.1f} ms, {self._said.cues_said} cues"
        )

    # --- the tracker thread ----------------------------------------------------------

    def _on_rate(self, fps: float) -> None:
        """The tracker now gets `fps` frames a second: the gait stage counts in frames."""
        self._chain.retime(GaitAnalyzer(self.settings.gait, fps=fps))

    # --- the coach stage's history ------------------------------------------------

    def _start_engine_session(self) -> None:
        """A new runner: their history feeds the weekly-load rule and the retro ladder."""
        runner = self.settings.service.runner_profile
        profile = self._fleet.signed_in.current
        if profile is not None:
            known = profile.history
        elif runner:
            known = self._store.history()
        else:
            self._engine.reset(today=date.today())
            return
        history = [(date.fromtimestamp(started), minutes) for started, minutes in known.sessions]
        state = known.program_state.get("retro")
        retro = RetroProgress(**state) if state else None
        carried = known.program_state.get(BASELINE_STATE) or {}
        baseline = {k: float(v) for k, v in carried.items() if isinstance(v, (int, float))}
        self._engine.reset(history=history, today=date.today(), retro=retro, baseline=baseline)

    def _runner_signed_in(self, profile: RunnerProfile) -> None:
        """(The QR reader's thread.) A runner who shows their code after their session began:
        the session is filed under them and they are greeted by name."""
        key = self._store_listener.session_key
        if key is None:
            return
        self._store.set_session_runner(key, profile.runner)
        text = runner_greeting(profile.name, profile.recap)
        self._said.cue_decided(Cue(time.monotonic(), GREETING_ID, text, "greeting", priority=100))

    def _cue_outcome(self, event: str, cue: Cue, reason: str) -> None:
        """How the speaker ended a cue (its threads): spoken only once it reached the device."""
        if event == "played":
            self.metrics.inc_cue(cue.cue_id)
        elif event == "printed":
            self.metrics.inc_cue_printed(reason)
        elif event == "dropped":
            # "late_for_speech" as before for a cue that waited too long or was replaced.
            late = reason in ("late", "replaced")
            self.metrics.inc_cue_dropped("late_for_speech" if late else reason)

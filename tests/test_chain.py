"""The coaching chain: tracked frames in, events out to listeners in a session's order; the
same cues as replaying the gait updates through the coach stage (what `analyze` reports)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np
from landmark_streams import landmark_run

from coachd.chain import ChainListener, CoachingChain
from coachd.coach.coaching import Coaching
from coachd.coach.programs import RetroProgress
from coachd.commands.analyze import cues_from_analysis
from coachd.gait import GaitAnalyzer
from coachd.messages import Cue, GaitUpdate, Stride, TrackedFrame
from coachd.settings import Settings

RUN = "synthetic:?view=side-left&seconds=40&overstride=0.3"


class Journal(ChainListener):
    """Every event, in order, as (name, detail)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.updates: list[GaitUpdate] = []

    def frame_measured(
        self, tracked: TrackedFrame, update: GaitUpdate, image: Optional[np.ndarray]
    ) -> None:
        self.updates.append(update)

    def session_started(self, t0: float, program: str) -> None:
        self.events.append(("started", program))

    def strides_joined(self, strides: Sequence[Stride]) -> None:
        self.events.append(("strides", len(strides)))

    def cue_decided(self, cue: Cue) -> None:
        self.events.append(("cue", cue))

    def session_ended(self, summary: Mapping[str, Any], retro: Optional[RetroProgress]) -> None:
        self.events.append(("ended", dict(summary)))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def cues(self) -> list[Cue]:
        return [cue for name, cue in self.events if name == "cue"]


def short_settings() -> Settings:
    settings = Settings()
    settings.engine.warmup_s = 10.0
    settings.service.session_end_s = 3.0
    return settings


def chain_with_journal(settings: Settings) -> tuple[CoachingChain, Journal, list[TrackedFrame]]:
    run = landmark_run(RUN, noise_px=2.0)
    chain = CoachingChain(
        GaitAnalyzer(settings.gait, run.params.fps), Coaching.from_settings(settings)
    )
    journal = Journal()
    chain.add_listener(journal)
    return chain, journal, run.frames


def nobody(after: TrackedFrame, seconds: float, fps: float = 30.0) -> list[TrackedFrame]:
    """Frames with nobody in view, following `after`."""
    count = int(seconds * fps)
    return [
        dataclasses.replace(after, seq=after.seq + i, t=after.t + i / fps, pose=None)
        for i in range(1, count + 1)
    ]


def test_a_session_reaches_listeners_in_order() -> None:
    chain, journal, frames = chain_with_journal(short_settings())
    for tracked in frames + nobody(frames[-1], 5.0):
        chain.feed(tracked)

    names = journal.names()
    assert names[0] == "started" and names[-1] == "ended", names
    assert names.count("started") == 1 and names.count("ended") == 1
    cues = journal.cues()
    assert cues[0].kind == "greeting" and names[1:3] == ["strides", "cue"], names[:4]
    assert cues[-1].kind == "summary" and names[-2] == "cue"
    assert any(c.kind == "correction" for c in cues), [c.cue_id for c in cues]
    assert journal.events[-1][1]["text"] == cues[-1].text
    assert not chain.in_session
    assert len(journal.updates) == len(frames) + 150


def test_the_chain_says_what_a_replay_of_its_updates_says() -> None:
    settings = short_settings()
    chain, journal, frames = chain_with_journal(settings)
    for tracked in frames:
        chain.feed(tracked)
    chain.finish(frames[-1].t)

    assert journal.cues() == cues_from_analysis(journal.updates, settings)


def test_abandoning_ends_the_session_once_and_says_nothing() -> None:
    chain, journal, frames = chain_with_journal(short_settings())
    for tracked in frames[:600]:
        chain.feed(tracked)
    assert chain.in_session
    said = len(journal.cues())

    chain.abandon()
    chain.abandon()

    assert journal.names().count("ended") == 1 and journal.names()[-1] == "ended"
    assert len(journal.cues()) == said
    assert journal.events[-1][1]["strides"] > 0
    assert not chain.in_session

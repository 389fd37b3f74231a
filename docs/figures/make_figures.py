"""Draw the figures of docs/metrics.md from the synthetic runner (run from the repository root):

    .venv/bin/python docs/figures/make_figures.py

Every figure is drawn from landmarks the gait stage sees (the synthetic runner's skeleton through
a pinhole camera), with the quantity it defines marked on it.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from coachd.gait.overlay import BONES
from coachd.gait.signals import to_view_coords
from coachd.messages import Landmark as L
from coachd.settings import GaitSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from landmark_streams import landmark_run, run_gait  # test support, not the package

OUT = Path(__file__).resolve().parent
LEFT, RIGHT, MID = "#1f77b4", "#ff7f0e", "#444444"


def colour(index: int) -> str:
    name = L(index).name
    return LEFT if name.startswith("LEFT") else RIGHT if name.startswith("RIGHT") else MID


def stick(ax: plt.Axes, p: np.ndarray, alpha: float = 1.0) -> None:
    """A stick figure from (33, 2) view coordinates (x forward or sideways, y up)."""
    for a, b in BONES:
        ax.plot(*zip(p[a], p[b]), color=colour(b), lw=2.5, alpha=alpha, solid_capstyle="round")
    head = p[[L.LEFT_EAR, L.RIGHT_EAR]].mean(axis=0)
    ax.add_patch(plt.Circle(tuple(head), 9, fill=False, color=MID, lw=2, alpha=alpha))
    ax.set_aspect("equal")
    ax.axis("off")


def side_run(query: str = "view=side-right&overstride=0.25&strike=heel&trunk_lean=8"):
    run = landmark_run(f"synthetic:?{query}&seconds=4", noise_px=0.0)
    points = np.array([to_view_coords(f.pose.xy, run.params.view) for f in run.frames])
    return run, points


def contact_frame(run, side: str = "right", nth: int = 3) -> int:
    ics = [e.t for e in run.truth.events if e.kind == "contact" and e.side == side]
    return round(ics[nth] * run.params.fps)


def mid(p: np.ndarray, a: int, b: int) -> np.ndarray:
    return (p[a] + p[b]) / 2


def fig_overstride_shank() -> None:
    run, pts = side_run()
    p = pts[contact_frame(run)]
    fig, ax = plt.subplots(figsize=(5, 6))
    stick(ax, p)
    hip = mid(p, L.LEFT_HIP, L.RIGHT_HIP)
    ankle, knee = p[L.RIGHT_ANKLE], p[L.RIGHT_KNEE]
    floor = min(p[L.RIGHT_HEEL, 1], p[L.RIGHT_FOOT_INDEX, 1])
    ax.plot([hip[0], hip[0]], [hip[1], floor - 5], "k--", lw=1)
    ax.annotate(
        "",
        (ankle[0], floor - 12),
        (hip[0], floor - 12),
        arrowprops={"arrowstyle": "<->", "color": "crimson"},
    )
    ax.text(
        (hip[0] + ankle[0]) / 2,
        floor - 28,
        "overstride\n(ankle - hip_mid) / L",
        color="crimson",
        ha="center",
        fontsize=8,
    )
    ax.plot([knee[0], knee[0]], [knee[1], ankle[1]], ":", color="green")
    angle = math.degrees(math.atan2(ankle[0] - knee[0], knee[1] - ankle[1]))
    ax.text(
        knee[0] + 6,
        (knee[1] + ankle[1]) / 2,
        f"shank {angle:+.0f}°\nfrom vertical",
        color="green",
        fontsize=8,
    )
    ax.set_title("At initial contact (right foot, side view)", fontsize=9)
    save(fig, "overstride_shank.png")


def fig_trunk_lean() -> None:
    run, pts = side_run("view=side-right&trunk_lean=14")
    p = pts[contact_frame(run) + 4]
    fig, ax = plt.subplots(figsize=(4, 6))
    stick(ax, p, alpha=0.5)
    hip, sh = mid(p, L.LEFT_HIP, L.RIGHT_HIP), mid(p, L.LEFT_SHOULDER, L.RIGHT_SHOULDER)
    ax.plot(*zip(hip, sh), color="crimson", lw=3)
    ax.plot([hip[0], hip[0]], [hip[1], sh[1]], "k--", lw=1)
    angle = math.degrees(math.atan2(sh[0] - hip[0], sh[1] - hip[1]))
    ax.text(
        hip[0] + 8,
        (hip[1] + sh[1]) / 2,
        f"trunk lean {angle:+.0f}°\n(mean over the step)",
        color="crimson",
        fontsize=8,
    )
    ax.set_title("hip_mid -> shoulder_mid from vertical", fontsize=9)
    save(fig, "trunk_lean.png")


def fig_foot_angle() -> None:
    fig, axes = plt.subplots(1, 3, figsize=(9, 2.6))
    for ax, strike in zip(axes, ("heel", "midfoot", "forefoot")):
        run, pts = side_run(f"view=side-right&strike={strike}")
        p = pts[contact_frame(run)]
        for a, b in (
            (L.RIGHT_KNEE, L.RIGHT_ANKLE),
            (L.RIGHT_ANKLE, L.RIGHT_HEEL),
            (L.RIGHT_HEEL, L.RIGHT_FOOT_INDEX),
            (L.RIGHT_ANKLE, L.RIGHT_FOOT_INDEX),
        ):
            ax.plot(*zip(p[a], p[b]), color=RIGHT, lw=3)
        heel, toe = p[L.RIGHT_HEEL], p[L.RIGHT_FOOT_INDEX]
        ax.plot([heel[0], heel[0] + 60], [heel[1], heel[1]], "k--", lw=1)
        angle = math.degrees(math.atan2(toe[1] - heel[1], toe[0] - heel[0]))
        ax.set_title(f"{strike}: foot angle {angle:+.0f}°", fontsize=9)
        ax.set_aspect("equal")
        ax.axis("off")
    fig.suptitle("heel->toe from horizontal at contact: > +5° heel, < -5° forefoot", fontsize=9)
    save(fig, "foot_angle.png")


def fig_swing() -> None:
    run, pts = side_run("view=side-right&knee_lift=45&heel_recovery=0.45")
    record = run_gait(run.frames, GaitSettings(view="side-right"), run.params.fps)
    offs = [e.t for e in run.truth.events if e.kind == "toe_off" and e.side == "right"]
    ics = [e.t for e in run.truth.events if e.kind == "contact" and e.side == "right"]
    start = round(offs[2] * 30)
    end = round(min(t for t in ics if t > offs[2]) * 30)
    swing = pts[start : end + 1]
    thigh = swing[:, L.RIGHT_KNEE] - swing[:, L.RIGHT_HIP]
    lift = np.degrees(np.arctan2(thigh[:, 0], -thigh[:, 1]))
    kick = np.linalg.norm(swing[:, L.RIGHT_HEEL] - swing[:, L.RIGHT_HIP], axis=1)
    fig, axes = plt.subplots(1, 2, figsize=(8, 4.5))
    for ax, i, label in (
        (axes[0], int(np.argmin(kick)), "heel recovery: smallest heel-hip / L"),
        (axes[1], int(np.argmax(lift)), "knee lift: largest thigh angle"),
    ):
        p = swing[i]
        stick(ax, p, alpha=0.5)
        if "heel" in label:
            ax.plot(*zip(p[L.RIGHT_HIP], p[L.RIGHT_HEEL]), color="crimson", lw=2)
        else:
            hip = p[L.RIGHT_HIP]
            ax.plot(*zip(hip, p[L.RIGHT_KNEE]), color="crimson", lw=3)
            ax.plot([hip[0], hip[0]], [hip[1], hip[1] - 60], "k--", lw=1)
            ax.text(hip[0] + 5, hip[1] - 75, f"{lift[i]:.0f}°", color="crimson")
        ax.set_title(label + " (right leg, swing)", fontsize=8)
    n = sum(1 for s in record.strides if "knee_lift_deg" in s.metrics)
    fig.suptitle(
        f"Swing: toe-off to the same foot's contact ({n} steps measured in 4 s)", fontsize=9
    )
    save(fig, "swing.png")


def fig_vertical_oscillation() -> None:
    run, pts = side_run()
    t = np.array([f.t for f in run.frames])
    hip = (pts[:, L.LEFT_HIP, 1] + pts[:, L.RIGHT_HIP, 1]) / 2
    fig, ax = plt.subplots(figsize=(7, 2.8))
    ax.plot(t, hip, color=MID)
    ics = [e.t for e in run.truth.events if e.kind == "contact"]
    for ic in ics:
        ax.axvline(ic, color="grey", lw=0.5)
    a, b = ics[4], ics[5]
    inside = (t >= a) & (t <= b)
    ax.fill_between(t[inside], hip[inside].min(), hip[inside].max(), color="crimson", alpha=0.2)
    ax.text(
        b + 0.02, hip[inside].mean(), "peak-to-peak\nover one step / L", color="crimson", fontsize=8
    )
    ax.set_xlabel("time, s (grey: initial contacts)")
    ax.set_ylabel("hip_mid height, px")
    ax.set_xlim(0.5, 3.0)
    save(fig, "vertical_oscillation.png")


def fig_contacts() -> None:
    run = landmark_run("synthetic:?view=side-right&seconds=4", noise_px=1.0)
    record = run_gait(run.frames, GaitSettings(), run.params.fps)
    pts = np.array([to_view_coords(f.pose.xy, "side-right") for f in run.frames])
    t = np.array([f.t for f in run.frames])
    low = np.minimum(pts[:, L.RIGHT_HEEL, 1], pts[:, L.RIGHT_FOOT_INDEX, 1])
    fig, axes = plt.subplots(2, 1, figsize=(7, 4.5), sharex=True)
    axes[0].plot(t, low - np.percentile(low, 10), color=RIGHT)
    axes[0].set_ylabel("right foot lowest\npoint height, px")
    axes[1].plot(
        t,
        pts[:, L.RIGHT_ANKLE, 0] - (pts[:, L.LEFT_HIP, 0] + pts[:, L.RIGHT_HIP, 0]) / 2,
        color=RIGHT,
    )
    axes[1].set_ylabel("ankle ahead of\nhip_mid, px")
    for ax in axes:
        for flag_start, flag_end in _runs(run.truth.contact[:, 1], t):
            ax.axvspan(flag_start, flag_end, color="green", alpha=0.15)
        for e in record.events:
            if e.side == "right":
                ax.axvline(e.t, color="crimson" if e.kind == "contact" else "purple", lw=1, ls="--")
    axes[1].set_xlabel("time, s  (green: truth contact; dashed: detected IC red, TO purple)")
    axes[1].set_xlim(1.0, 3.5)
    save(fig, "contacts.png")


def _runs(flags: np.ndarray, t: np.ndarray) -> list[tuple[float, float]]:
    out, start = [], None
    for i, flag in enumerate(flags):
        if flag and start is None:
            start = t[i]
        if not flag and start is not None:
            out.append((start, t[i - 1]))
            start = None
    return out


def fig_timeline() -> None:
    run = landmark_run("synthetic:?view=side-right&seconds=3", noise_px=0.0)
    t = np.array([f.t for f in run.frames])
    fig, ax = plt.subplots(figsize=(7, 2.2))
    for row, (_side, col) in enumerate((("left", LEFT), ("right", RIGHT))):
        for a, b in _runs(run.truth.contact[:, row], t):
            ax.broken_barh([(a, b - a)], (row - 0.3, 0.6), color=col)
    ics = [e.t for e in run.truth.events if e.kind == "contact"]
    ax.annotate("", (ics[3], 1.6), (ics[2], 1.6), arrowprops={"arrowstyle": "<->"})
    ax.text((ics[2] + ics[3]) / 2, 1.75, "step: cadence = 60 / step time", ha="center", fontsize=8)
    ax.annotate("", (ics[4], -0.75), (ics[2], -0.75), arrowprops={"arrowstyle": "<->"})
    ax.text(
        (ics[2] + ics[4]) / 2,
        -1.15,
        "stride; duty factor = contact / stride",
        ha="center",
        fontsize=8,
    )
    ax.set_yticks([0, 1], ["left", "right"])
    ax.set_ylim(-1.4, 2.1)
    ax.set_xlim(0.3, 2.2)
    ax.set_xlabel("time, s (bars: foot on the belt, IC to TO = contact time)")
    save(fig, "timeline.png")


def fig_shoulders() -> None:
    run = landmark_run("synthetic:?view=rear&shoulder_sway=8&seconds=3", noise_px=0.0)
    pts = np.array([to_view_coords(f.pose.xy, "rear") for f in run.frames])
    t = np.array([f.t for f in run.frames])
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6), gridspec_kw={"width_ratios": [1, 1.6, 1]})
    p = pts[40]
    stick(axes[0], p, alpha=0.6)
    axes[0].plot(*zip(p[L.LEFT_SHOULDER], p[L.RIGHT_SHOULDER]), color="crimson", lw=3)
    axes[0].set_title("rear view: shoulder line", fontsize=9)
    line = pts[:, L.RIGHT_SHOULDER] - pts[:, L.LEFT_SHOULDER]
    roll = np.degrees(np.arctan2(line[:, 1], np.abs(line[:, 0])))
    axes[1].plot(t, roll, color="crimson", label="shoulder roll, °")
    sway = (
        mid_series(pts, L.LEFT_SHOULDER, L.RIGHT_SHOULDER)
        - mid_series(pts, L.LEFT_HIP, L.RIGHT_HIP)
    )[:, 0]
    axes[1].plot(
        t, 10 * sway / np.abs(line[:, 0]).mean(), color=MID, label="sway x10, shoulder widths"
    )
    axes[1].legend(fontsize=7)
    axes[1].set_xlabel("time, s: peak-to-peak over a stride")
    q = pts[40]
    stick(axes[2], q, alpha=0.4)
    sh, ear, hip = (
        mid(q, L.LEFT_SHOULDER, L.RIGHT_SHOULDER),
        mid(q, L.LEFT_EAR, L.RIGHT_EAR),
        mid(q, L.LEFT_HIP, L.RIGHT_HIP),
    )
    axes[2].plot(*zip(sh, ear), color="crimson", lw=3)
    axes[2].plot(*zip(hip, sh), color="green", lw=3)
    axes[2].set_title("elevation: red / green", fontsize=9)
    save(fig, "shoulders.png")


def mid_series(pts: np.ndarray, a: int, b: int) -> np.ndarray:
    return (pts[:, a] + pts[:, b]) / 2


def fig_views() -> None:
    fig, axes = plt.subplots(1, 4, figsize=(10, 3.4))
    for ax, view in zip(axes, ("side-left", "side-right", "front", "rear")):
        run = landmark_run(f"synthetic:?view={view}&seconds=1", noise_px=0.0)
        xy = run.frames[12].pose.xy.copy()
        xy[:, 1] *= -1  # image y down -> up, x as the camera sees it
        stick(ax, xy)
        ax.set_title(view, fontsize=9)
    fig.suptitle(
        "What the camera sees (image x as is): side-left = runner faces image-left", fontsize=9
    )
    save(fig, "views.png")


def save(fig: plt.Figure, name: str) -> None:
    fig.tight_layout()
    fig.savefig(OUT / name, dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    for draw in (
        fig_views,
        fig_timeline,
        fig_contacts,
        fig_overstride_shank,
        fig_trunk_lean,
        fig_foot_angle,
        fig_swing,
        fig_vertical_oscillation,
        fig_shoulders,
    ):
        draw()

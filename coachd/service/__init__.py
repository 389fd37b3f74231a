"""Kiosk service parts: sd_notify, health/metrics HTTP, the sessions database, recordings
and reports. The daemon (coachd.service.daemon) wires them together."""

from __future__ import annotations

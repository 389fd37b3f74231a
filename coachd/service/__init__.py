"""Kiosk service parts: sd_notify, health/metrics HTTP, hands-free sessions, the sessions
database and reports. The daemon (coachd.service.daemon) wires them together."""

from __future__ import annotations

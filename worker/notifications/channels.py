"""The registry of notification channels: add a channel's ``ChannelSpec`` here, once.

Planning and delivery read ``CHANNELS`` / ``BY_NAME`` from this module at call time.
"""

from __future__ import annotations

from collections.abc import Mapping

from worker.notifications.channel import ChannelSpec
from worker.notifications.operator_alerts import OPERATOR_ALERTS
from worker.notifications.recovery_emails import RECOVERY_EMAILS
from worker.notifications.slack_alerts import SLACK_ALERTS

CHANNELS: tuple[ChannelSpec, ...] = (SLACK_ALERTS, RECOVERY_EMAILS, OPERATOR_ALERTS)
BY_NAME: Mapping[str, ChannelSpec] = {spec.name: spec for spec in CHANNELS}

__all__ = ["BY_NAME", "CHANNELS"]

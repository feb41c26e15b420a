"""Notifications: Slack alerts to operators and recovery emails to customers, each sent once.

The pipeline writes outbox rows in the same transaction as the case change (``planning``);
a Dramatiq actor delivers each row (``delivery``). Every channel implements one interface,
``channel.ChannelSpec`` (plan, prepare, send, connect), and is registered once in
``channels.CHANNELS``: today ``slack_alerts`` and ``recovery_emails``. A unique dedupe key per
row makes redeliveries and retries no-ops; a claim with a lease makes two workers racing on
one row send it once.
"""

"""Notifications: Slack alerts to operators and recovery emails to customers, each sent once.

The pipeline writes outbox rows in the same transaction as the case change (``planning``);
a Dramatiq actor delivers each row (``delivery``) through a channel adapter (``slack``,
``email``, with the payment link from ``portal``). A unique dedupe key per (case, channel,
reason, invoice attempt) makes redeliveries and retries no-ops; a claim with a lease makes
two workers racing on one row send it once.
"""

"""Day one with a Stripe account: ``sync`` pulls the current state of every object kind the
rules read, ``backfill`` replays the recent events Stripe still keeps.

Fetched objects enter the projection exactly as events do (``worker.stripe_api.fetched_records``:
the same parser, a version stamped with the fetch time), then every person touched is
evaluated at wall-clock time. Cursors in the store make both resumable.
"""

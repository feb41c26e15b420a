"""The clock: re-evaluate people whose findings change with time alone.

Rules run when an event arrives; a trial entering its last days or a card expiring sends no
event of its own. The pipeline writes each person's next time-driven instant
(``rules.due.next_due``) to an indexed table in the same transaction as the projection; a
periodic Dramatiq job (``run_clock``), one run at a time across all workers, evaluates the
people whose instant has come, at wall-clock time.
"""

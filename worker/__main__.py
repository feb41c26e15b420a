"""``python -m worker`` runs the ``billing-ops`` command (for when the script is not on PATH)."""

from worker.cli import main

main(prog_name="billing-ops")

"""``python -m worker.dramatiq_cli ARGS``: Dramatiq's own command line, logging like billing-ops.

Dramatiq's main process never imports billing-ops, so its lines ("booting up", "worker
exited") would be Dramatiq's text format beside our JSON. This configures billing-ops'
logging first and tells Dramatiq not to configure its own (``--skip-logging``); the worker
processes it forks configure theirs when they import ``worker.entrypoint``.
"""

from __future__ import annotations

import sys

from dramatiq.cli import main as dramatiq_main
from dramatiq.cli import make_argument_parser

from worker.logs import configure_logging
from worker.settings import load_settings


def main(argv: list[str]) -> int:
    configure_logging(load_settings().log_format)
    return int(dramatiq_main(make_argument_parser().parse_args([*argv, "--skip-logging"])) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

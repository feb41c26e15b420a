"""One `serve` per data dir: an exclusive ``flock`` on a file that names its holder's pid.

The kernel drops the lock when the holder dies, however it dies, so a crash never leaves a
stale lock behind; a second `serve` learns at once who runs there instead of sharing (and
wiping) the first one's Redis socket and Prometheus files.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from worker.errors import AlreadyRunningError

LOCK_FILE_NAME = "serve.lock"


def acquire_instance_lock(data_dir: Path) -> IO[str]:
    """Lock ``data_dir`` for this process; keep the returned file open for as long as it runs."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = (data_dir / LOCK_FILE_NAME).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise AlreadyRunningError(
            f"billing-ops is already running in {data_dir} (pid {holder})"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle

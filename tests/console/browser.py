"""Debian's chromium for the console's browser tests, driven by Playwright for Python.

Playwright's own browser download cannot be reached from here, so the tests launch the system
package's binary (``executable_path``). When it is missing, the set-up installs it with the
system package manager (CI runs as root); if that fails, the tests fail in CI and skip
elsewhere, so a green CI has always run them in a real browser.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
#: Headless, no sandbox (root in CI), and nothing that phones home or updates itself.
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
APT_TIMEOUT = 900  # seconds: a first install downloads ~100 MB


def ensure_chromium() -> str | None:
    """The chromium binary, installed with apt-get when missing; None with the reason logged
    to stderr when it cannot be had."""
    if CHROMIUM.exists():
        return str(CHROMIUM)
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        return None
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")

    def apt_get(*args: str) -> int:
        run = subprocess.run([apt, *args], env=env, capture_output=True, timeout=APT_TIMEOUT)
        return run.returncode

    install = ("install", "-y", "--no-install-recommends", "chromium")
    if apt_get(*install) != 0:  # the package lists may be missing or stale
        apt_get("update")
        apt_get(*install)
    return str(CHROMIUM) if CHROMIUM.exists() else None

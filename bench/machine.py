"""One line that says which machine a figure was measured on (every bench prints it)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def describe() -> str:
    """``machine: 2 cpus (model), load 1.2 0.9 0.8, Python 3.11.7, Linux 6.1``."""
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"machine: {os.cpu_count()} cpus ({cpu_model()}), load {load}, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )

"""What the processes import is installed by `pip install billing-ops` alone.

The test environment holds more than a production install (pytest brings ``packaging``, for
one), so a module the web process needs but no runtime dependency declares works in every
test and fails on the first `./scripts/serve` of a fresh install (gunicorn's gevent worker
imports ``packaging``: it is gunicorn's ``gevent`` extra). This loads the processes' modules in
a fresh interpreter where every installed package outside the runtime dependency closure of
billing-ops (markers evaluated, extras followed, test extras left out) cannot be imported, as
on a fresh install; optional imports (slack-sdk's aiohttp, for one) then take their fallback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

#: The modules the web, worker and CLI processes load (the Procfile's and serve's).
PROCESS_MODULES = (
    "webhooks",
    "webhooks.gunicorn_config",
    "webhooks.gunicorn_worker",
    "gunicorn.workers.ggevent",
    "worker.cli",
    "worker.actors",
    "worker.dramatiq_cli",
    "sqlalchemy.dialects.postgresql.psycopg",
    "psycopg",
)

#: Runs in the fresh interpreter: hide the packages a fresh install lacks, then import.
_FRESH_INSTALL = """
import importlib, importlib.abc, json, sys

hidden = set(json.loads(sys.argv[1]))


class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in hidden:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


sys.meta_path.insert(0, NotInstalled())
for name in sys.argv[2:]:
    importlib.import_module(name)
"""


def runtime_closure(project: str = "billing-ops") -> set[str]:
    """Every distribution a plain install of ``project`` brings, by canonical name."""
    found: set[str] = set()
    seen: set[tuple[str, str]] = set()
    stack = [(canonicalize_name(project), "")]
    while stack:
        name, extra = stack.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        found.add(name)
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is not None and not marker.evaluate({"extra": extra}):
                continue
            child = canonicalize_name(requirement.name)
            stack.append((child, ""))
            stack.extend((child, wanted) for wanted in requirement.extras)
    return found


def test_the_processes_start_with_the_runtime_dependencies_alone():
    """The web, worker and CLI modules import with only what `pip install billing-ops` brings."""
    closure = runtime_closure()
    hidden = sorted(
        module
        for module, dists in metadata.packages_distributions().items()
        if not any(canonicalize_name(dist) in closure for dist in dists)
    )
    assert "pytest" in hidden  # the check is live: test-only packages are hidden
    result = subprocess.run(
        [sys.executable, "-c", _FRESH_INSTALL, json.dumps(hidden), *PROCESS_MODULES],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]

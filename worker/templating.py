"""One Jinja2 set-up for every template folder under ``worker/templates``.

Strict about missing variables (a typo in an edited template fails loudly in tests, not
silently in a customer's inbox) and tidy about whitespace.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined


def template_env(folder: str, **options: Any) -> Environment:
    """An environment loading ``worker/templates/<folder>``; ``options`` override defaults."""
    settings: dict[str, Any] = {
        "undefined": StrictUndefined,
        "trim_blocks": True,
        "lstrip_blocks": True,
        "autoescape": False,
    }
    settings.update(options)
    return Environment(loader=PackageLoader("worker", f"templates/{folder}"), **settings)

"""The operator API's OpenAPI 3.1 document: written by hand in ``openapi.yaml`` beside this
module, served as JSON at ``/api/openapi.json``.

Written, not generated: the API is seven operations whose error bodies, nullable fields and
strict parameters are the point of the document, and the views stay plain Flask (no framework
to move them into). It cannot drift unseen: ``tests/webhooks/test_openapi.py`` validates the
real answers of every operation against it, checks that every ``/api`` route is in it, and runs
schemathesis over the app with it.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

import yaml
from flask import Blueprint, Response, jsonify

bp = Blueprint("openapi", __name__, url_prefix="/api")


@cache
def openapi_document() -> dict[str, Any]:
    """The document, parsed once per process (``safe_load``: plain data only)."""
    text = files("webhooks").joinpath("openapi.yaml").read_text(encoding="utf-8")
    document: dict[str, Any] = yaml.safe_load(text)
    return document


@bp.get("/openapi.json")
def openapi_json() -> tuple[Response, int]:
    """The document; no token needed (it describes the API, it holds no data)."""
    return jsonify(openapi_document()), 200

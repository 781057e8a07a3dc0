"""The lab server: a trove's catalogue and files over HTTP, with token auth (``trove serve``).

- :func:`create_app` builds the FastAPI application (OpenAPI at ``/openapi.json``);
- :func:`serve` runs it with uvicorn.

Routes are under ``/api/v1`` (:mod:`.reads`, :mod:`.writes`). The root answers Alyx's REST
API for ONE-api and alyx-connector (:mod:`.alyx`). Reads need a token
unless the server runs with ``public_read``; writes always do. Errors are answered in one
place (:mod:`.problems`), parameters shared by routes are declared once (:mod:`.params`), and
the OpenAPI description says what the server answers (:mod:`.openapi`).
"""

from __future__ import annotations

from .app import API_PREFIX, create_app
from .run import serve

__all__ = ["API_PREFIX", "create_app", "serve"]

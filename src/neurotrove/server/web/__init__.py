"""The web app of ``trove serve``: browse, curate and administer a trove in a browser.

Served at ``/app/`` (``/`` redirects there) by the same server as the API, with the same
accounts, roles and checks. See :mod:`.pages` for the pages and :mod:`.security` for the
login session, CSRF tokens and login rate limit.
"""

from .pages import APP, router

__all__ = ["APP", "router"]

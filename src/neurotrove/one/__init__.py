"""ONE-api's API over any trove: ``from neurotrove.one import ONE, One, OneAlyx``.

A script written for ONE-api changes only its import line. ``ONE(cache_dir=ROOT)`` opens
the local trove at ``ROOT``; ``ONE(base_url=URL, username=..., password=...)`` a served
one. The methods take ONE's arguments and return ONE's types (``search`` a list of
``uuid.UUID``, ``list_datasets`` a list of ``rel_path``); ONE-api need not be installed.
The differences kept on purpose are listed in ``docs/one.md``.
"""

from .alyx import ONE, AlyxClient, OneAlyx
from .api import One
from .records import NotSupportedError

__all__ = ["ONE", "AlyxClient", "NotSupportedError", "One", "OneAlyx"]

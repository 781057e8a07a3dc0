"""Register benchmark: the scan and the md5s of a 100,000-file tree against their anchors.

``bench_core.py``'s sections 1-3 on a bigger tree (2,500 sessions x 40 files by default):

1. ``Trove.register(hash=False)`` on a fresh catalogue vs ONE's
   ``one.alf.cache.make_parquet_db(root, hash_files=False)``; files/s (budget: at least 5x);
2. ``Trove.register(hash=True)`` vs ``md5sum`` over the same files, in one process and in one
   per core; MB/s (budget: at least 90% of ``md5sum``);
3. an incremental re-register with nothing changed.

Every option of ``bench_core.py`` is accepted (``--sessions``, ``--files-per-session``,
``--repeat``, ``--keep``, ``--output``). See ``benchmarks/README.md``.

Usage::

    python benchmarks/bench_register.py                      # 100,000 files, --repeat 1
    python benchmarks/bench_register.py --sessions 250 --repeat 3
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import main as core_main

DEFAULTS = ["--sessions", "2500", "--files-per-session", "40", "--repeat", "1"]


def main(argv: list[str] | None = None) -> int:
    """Run ``bench_core.py --sections register`` with this benchmark's defaults."""
    return core_main(
        [*DEFAULTS, *(sys.argv[1:] if argv is None else argv), "--sections", "register"]
    )


if __name__ == "__main__":
    sys.exit(main())

"""Load benchmark: ``load_object`` against a bare ``np.load`` of the same files.

``bench_core.py``'s section 5 (the warm calls): the tree is registered untimed, then
``load_object(eid, 'trials', collection='alf')`` (the trials table and six attributes) is
timed once per session on ``--eids`` random sessions, against ``np.load`` /
``pd.read_parquet`` of exactly the files it returned and against ONE's
``load_object(check_hash=False)``; the budget is at most 1.2x the bare loads. The warm
searches, ``list_datasets`` and ``get_details`` of that section come along.

Every option of ``bench_core.py`` is accepted. See ``benchmarks/README.md``.

Usage::

    python benchmarks/bench_load.py                          # 300 sessions x 40 files
    python benchmarks/bench_load.py --sessions 1000 --eids 200
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import main as core_main

DEFAULTS = ["--eids", "200"]


def main(argv: list[str] | None = None) -> int:
    """Run ``bench_core.py --sections warm`` with this benchmark's defaults."""
    return core_main([*DEFAULTS, *(sys.argv[1:] if argv is None else argv), "--sections", "warm"])


if __name__ == "__main__":
    sys.exit(main())

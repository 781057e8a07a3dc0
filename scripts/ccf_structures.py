"""Rebuild src/neurotrove/ephys/ccf_structures.csv from iblatlas's copy of the Allen ontology.

The table neurotrove ships (structure id, acronym, name, parent id) is cut from
``iblatlas/allen_structure_tree.csv`` in the iblatlas wheel on PyPI, which holds the Allen
Mouse Brain Atlas structure ontology (structure graph 1, the one the CCFv3 annotation
uses) as the Allen Brain Atlas API serves it, plus a row ``0,void`` of its own (left out
here: void means outside the brain). Run it with the file taken out of the wheel:

    pip download --no-deps -d /tmp/iblatlas iblatlas==1.3.0
    python -m zipfile -e /tmp/iblatlas/iblatlas-1.3.0-py3-none-any.whl /tmp/iblatlas/x
    python scripts/ccf_structures.py /tmp/iblatlas/x/iblatlas/allen_structure_tree.csv 1.3.0
"""

from __future__ import annotations

import csv
import hashlib
import sys
from pathlib import Path

TARGET = Path(__file__).parent.parent / "src" / "neurotrove" / "ephys" / "ccf_structures.csv"


def main(source: Path, version: str) -> None:
    """Write the compact table from ``source``, naming it and its checksum in the header."""
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    with source.open(newline="") as file:
        rows = [r for r in csv.DictReader(file) if r["graph_id"] == "1"]
    rows.sort(key=lambda r: int(r["graph_order"]))
    with TARGET.open("w", newline="") as out:
        out.write(
            "# Allen Mouse Brain Atlas structure ontology, structure graph 1: the adult mouse\n"
            "# ontology whose ids Allen's CCFv3 annotation and ecephys tables use. Structure\n"
            "# id, acronym, name and parent structure id, in graph order. Structure data (c)\n"
            "# Allen Institute for Brain Science, Allen Mouse Brain Atlas, atlas.brain-map.org.\n"
            "# Cut by scripts/ccf_structures.py from iblatlas/allen_structure_tree.csv of the\n"
            f"# PyPI package iblatlas {version} (MIT, International Brain Laboratory),\n"
            f"# sha256 {digest}.\n"
        )
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["id", "acronym", "name", "parent_structure_id"])
        for row in rows:
            writer.writerow([row["id"], row["acronym"], row["name"], row["parent_structure_id"]])


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])

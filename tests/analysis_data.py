"""A lab's analysis folder and sessions with spikes, shared by the analysis tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import neurotrove as nt

SCRIPT = '''
import numpy as np
import pandas as pd

from neurotrove.analysis import alf_object, analysis, dataset, rows, table

import helpers


@analysis(
    inputs={"times": "spikes.times", "clusters": dataset("spikes.clusters", collection="alf")},
    outputs={"rates": "clusters.firingRate.npy", "summary": rows("units", "spikes")},
)
def firing(times, clusters, duration=10.0):
    """Firing rate of each cluster."""
    counts = np.bincount(clusters)
    return {
        "rates": helpers.scale(counts, duration),
        "summary": {"units": int(len(counts)), "spikes": int(len(times))},
    }


@analysis(inputs={"times": "spikes.times"}, outputs={"stats": "spikes.stats.pqt"})
def stats(times, session):
    """Spike count per session, with the subject."""
    return pd.DataFrame({"subject": [session["subject"]], "n": [len(times)]})


@analysis(inputs={"spikes": alf_object("spikes", collection="alf")}, outputs={"n": rows()})
def counts(spikes):
    """Length of each attribute of the spikes object."""
    return {"n": [{"attribute": k, "length": len(v)} for k, v in sorted(spikes.items())]}


@analysis(inputs={"times": "spikes.times", "steps": table("step_status")}, outputs={"n": rows()})
def broken(times, steps):
    """Raises."""
    return {"n": 1 / 0}


def not_declared(times):
    return times
'''

HELPERS = """
def scale(counts, duration):
    return counts / duration
"""


def write_analysis_folder(folder: Path) -> Path:
    """Write the lab's analysis folder: ``spikes.py`` (the analyses) and ``helpers.py``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spikes.py").write_text(SCRIPT)
    (folder / "helpers.py").write_text(HELPERS)
    return folder


def add_spikes(
    trove: nt.Trove, subject: str, date: str, work: Path, *, seed: int, clusters: bool = True
) -> str:
    """Register a session with ``alf/spikes.times.npy`` (and ``spikes.clusters``); its eid."""
    rng = np.random.default_rng(seed)
    eid = str(trove.register_session(subject, date, lab="swc"))
    source = work / f"{subject}-{date}"
    source.mkdir(parents=True, exist_ok=True)
    n = 40 + seed
    np.save(source / "spikes.times.npy", np.sort(rng.uniform(0, 10, n)))
    files = [source / "spikes.times.npy"]
    if clusters:
        np.save(source / "spikes.clusters.npy", rng.integers(0, 4, n))
        files.append(source / "spikes.clusters.npy")
    trove.register_files(eid, files, collection="alf")
    return eid


def expected_rates(trove: nt.Trove, eid: str, duration: float = 10.0) -> np.ndarray:
    """The firing rates ``spikes.firing`` should give for a session."""
    clusters = trove.load_dataset(eid, "spikes.clusters")
    return np.bincount(clusters) / duration

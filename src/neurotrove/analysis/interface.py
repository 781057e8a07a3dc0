r"""``trove.analysis``: run a lab's analysis functions over sessions, keep results with provenance.

Examples
--------
A script ``rates.py`` in the lab's analysis folder declares what it reads and gives back:

>>> import pathlib, tempfile, numpy as np, neurotrove as nt
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "rates.py").write_text('''
... from neurotrove.analysis import analysis, rows
...
... @analysis(inputs={"times": "spikes.times"},
...           outputs={"rate": "spikes.rate.npy", "summary": rows("spikes")})
... def firing(times, duration=10.0):
...     return {"rate": [len(times) / duration], "summary": {"spikes": len(times)}}
... ''')
>>> trove = nt.connect(tempfile.mkdtemp(), create=True)
>>> eid = trove.register_session("KS005", "2024-01-02")
>>> source = folder / "spikes.times.npy"; np.save(source, np.arange(50.0))
>>> _ = trove.register_files(eid, [source], collection="alf")
>>> trove.analysis.analysis_dir = folder
>>> report = trove.analysis.run("rates.firing", progress=False)
>>> report["status"].tolist(), report["outputs"].tolist()
(['computed'], [['analysis/spikes.rate.npy']])
>>> trove.load_dataset(eid, "spikes.rate").tolist()
[5.0]
>>> trove.analysis.run("rates.firing", progress=False)["status"].tolist()  # unchanged
['reused']
>>> trove.analysis.run("rates.firing", params={"duration": 5.0}, progress=False)["status"].tolist()
['computed']
>>> trove.analysis.results("rates.firing")[["subject", "spikes"]]
  subject  spikes
0   KS005      50
"""

from __future__ import annotations

import builtins
import inspect
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, ValidationError
from .declare import (
    DatasetInput,
    DatasetOutput,
    ObjectInput,
    TableInput,
    analysis_names,
    load_analysis,
)
from .runs import REPORT_COLUMNS, RunRequest, check_params, run_analysis

if TYPE_CHECKING:
    import pandas as pd

    from ..trove.trove import Trove

__all__ = ["LIST_COLUMNS", "Analyses"]

LIST_COLUMNS = [
    "name",
    "description",
    "inputs",
    "outputs",
    "params",
    "code_hash",
    "stored",
    "problem",
]
"""The columns of :meth:`Analyses.list`."""


class Analyses:
    """The lab's analysis functions, run over a trove's sessions (``trove.analysis``).

    Parameters
    ----------
    trove : Trove
        The trove whose sessions are analysed (local or served).

    Attributes
    ----------
    analysis_dir : Path or None
        Where analyses are imported from; by default the ``analysis_dir`` setting
        (``NEUROTROVE_ANALYSIS_DIR``, or ``analysis_dir`` in ``config.toml``), the same
        folder mask functions come from.
    """

    def __init__(self, trove: Trove) -> None:
        self.trove = trove
        self._analysis_dir: Path | None = trove.settings.analysis_dir

    def __repr__(self) -> str:
        return f"<Analyses of {self.trove!r} from {self.analysis_dir}>"

    @property
    def analysis_dir(self) -> Path | None:
        """Where analysis functions are imported from."""
        return self._analysis_dir

    @analysis_dir.setter
    def analysis_dir(self, folder: str | os.PathLike[str] | None) -> None:
        self._analysis_dir = None if folder is None else Path(folder).expanduser().resolve()

    def list(self) -> pd.DataFrame:
        """List the analyses in the analysis folder, with what they read, give and store.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``name`` (``script.function``): ``description``, ``inputs`` and
            ``outputs`` (dicts of name to what), ``params`` (defaults), ``code_hash``,
            ``stored`` (results kept in the catalogue) and ``problem`` (why a script could
            not be loaded; then the name is the script's).

        Raises
        ------
        ConfigError
            When no analysis folder is set.
        """
        import pandas as pd

        folder = self._folder()
        stored = self.trove.table("analysis_runs").get()
        counts = stored["analysis"].value_counts().to_dict() if len(stored) else {}
        listed: builtins.list[dict[str, Any]] = []
        for name, problem in analysis_names(folder):
            row: dict[str, Any] = dict.fromkeys(LIST_COLUMNS)
            row.update(name=name, problem=problem, stored=int(counts.get(name, 0)))
            if problem is None:
                loaded = load_analysis(name, folder)
                definition = loaded.definition
                row.update(
                    description=definition.description,
                    inputs={k: _shown(v) for k, v in definition.inputs.items()},
                    outputs={
                        k: (v.rel_path if isinstance(v, DatasetOutput) else "rows")
                        for k, v in definition.outputs.items()
                    },
                    params={
                        k: "<required>" if v is inspect.Parameter.empty else v
                        for k, v in definition.params.items()
                    },
                    code_hash=loaded.code_hash,
                )
            listed.append(row)
        frame = pd.DataFrame(listed, columns=LIST_COLUMNS)
        frame["stored"] = frame["stored"].astype("int64")
        return frame.set_index("name")

    def run(
        self,
        name: str,
        sessions: Any = None,
        *,
        params: Mapping[str, Any] | None = None,
        force: bool = False,
        skip_errors: bool = False,
        executor: Any = None,
        progress: bool | None = None,
        **conditions: Any,
    ) -> pd.DataFrame:
        """Run analysis ``script.function`` on sessions; reuse stored results that still hold.

        A session's result is reused when the analysis's code (its script and the folder's
        modules it imports), the input datasets (ids, revisions, md5s) or tables, and the
        parameters are the same as when it was stored, and its output datasets are still
        there unchanged; otherwise the function runs and its result replaces the stored one.
        Each result is stored with its provenance (``trove.table("analysis_runs")``): code
        hash, inputs, parameters, outputs, who, where and when.

        Parameters
        ----------
        name : str
            ``script.function`` in the analysis folder.
        sessions : eid, list of eids, or DataFrame, optional
            The sessions (any form :meth:`~neurotrove.Trove.to_eid` takes, or a
            :meth:`~neurotrove.Trove.search` result); default: every session matching
            ``conditions``.
        params : dict, optional
            Values for the function's other parameters (JSON values, recorded).
        force : bool
            Compute again even where a stored result holds.
        skip_errors : bool
            Report a failing session (a missing input, an error in the function) and go on;
            otherwise the first failure is raised once the sessions in flight are stored.
        executor : None, int, concurrent.futures.Executor or dask.distributed.Client
            Where the function runs, as for :meth:`~neurotrove.pipeline.Pipeline.run`
            (workers load it from the analysis folder by name, so it must be there).
        progress : bool, optional
            Show computed, reused, failed and remaining sessions; ``None``: on a terminal.
        **conditions
            :meth:`~neurotrove.Trove.search` filters choosing the sessions.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``eid``: ``subject, date, number, status`` (``computed``,
            ``reused`` or ``failed``), ``run`` (the provenance row's id), ``outputs``
            (dataset paths), ``rows``, ``seconds`` and ``error``.

        Raises
        ------
        ValidationError
            For an unknown analysis or parameter, or (without ``skip_errors``) a function
            that raised or returned something other than its declared outputs.
        NotFoundError
            For a session without a declared input (without ``skip_errors``); the message
            names the input and the dataset.
        ConflictError
            When an input dataset changed while the function ran, or an output would
            replace a dataset the analysis did not write; nothing is stored for that session.
        """
        import pandas as pd

        folder = self._analysis_dir
        loaded = load_analysis(name, folder)
        checked = check_params(loaded, params)
        eids = self._sessions(sessions, conditions)
        if not eids:
            return pd.DataFrame(columns=REPORT_COLUMNS).set_index("eid")
        request = RunRequest(
            loaded,
            folder,
            eids,
            checked,
            force=bool(force),
            skip_errors=bool(skip_errors),
            executor=executor,
            progress=self.trove.settings.progress if progress is None else progress,
        )
        return run_analysis(self.trove, request)

    def runs(self, name: str | None = None, **conditions: Any) -> pd.DataFrame:
        """Return the stored results' provenance (``trove.table("analysis_runs")``).

        Parameters
        ----------
        name : str, optional
            One analysis.
        **conditions
            Table conditions (``subject=``, ``created_by=``, ``eid=``).
        """
        if name is not None:
            conditions["analysis"] = name
        return self.trove.table("analysis_runs").get(**conditions)

    def results(self, name: str, output: str | None = None, **conditions: Any) -> pd.DataFrame:
        """Return an analysis's rows of the results table, one column per value.

        Parameters
        ----------
        name : str
            ``script.function``.
        output : str, optional
            One rows output (when the analysis declares several).
        **conditions
            Table conditions (``subject=``, ``eid=``).

        Returns
        -------
        pandas.DataFrame
            ``eid, subject, date, number, output, row`` and the rows' values.
        """
        import pandas as pd

        conditions["analysis"] = name
        if output is not None:
            conditions["output"] = output
        stored = self.trove.table("analysis_results").get(**conditions)
        base = stored.reset_index()[["eid", "subject", "date", "number", "output", "row"]]
        values = pd.DataFrame(builtins.list(stored["values"]), index=base.index)
        return pd.concat([base, values], axis=1)

    def _folder(self) -> Path:
        if self._analysis_dir is None:
            raise ConfigError(
                "no analysis folder is set: set NEUROTROVE_ANALYSIS_DIR, analysis_dir in "
                "config.toml, or trove.analysis.analysis_dir"
            )
        return self._analysis_dir

    def _sessions(self, sessions: Any, conditions: Mapping[str, Any]) -> builtins.list[str]:
        import pandas as pd

        if sessions is not None and conditions:
            raise ValidationError(
                "give sessions or search conditions, not both: "
                f"{', '.join(conditions)} were given with sessions"
            )
        if sessions is None:
            return [str(e) for e in self.trove.search(**conditions).index]
        if isinstance(sessions, pd.DataFrame):
            listed: builtins.list[Any] = builtins.list(sessions.index)
        elif isinstance(sessions, list | tuple | set | pd.Index | pd.Series):
            listed = builtins.list(sessions)
        else:
            listed = [sessions]
        eids: builtins.list[str] = []
        for item in listed:
            eid = str(self.trove.to_eid(item))
            if eid not in eids:
                eids.append(eid)
        return eids


def _shown(spec: DatasetInput | ObjectInput | TableInput) -> str:
    """Say what an input is in a listing: a dataset's name, ``object spikes``, ``table units``."""
    if isinstance(spec, DatasetInput):
        return spec.name
    return f"{'object' if isinstance(spec, ObjectInput) else 'table'} {spec.name}"

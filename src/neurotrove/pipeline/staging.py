"""A step's outputs on a trove whose files are in a bucket: staged, then stored as datasets.

On a trove whose files are in its data root, a step writes in the session folder and its
outputs stay there. On a trove whose files are in a bucket, the session folder is not where
the files live: the step gets an empty staging folder instead
(``<root>/.trove/staging/pipeline/<step>/<eid>``) as :attr:`SessionRecord.path
<neurotrove.pipeline.SessionRecord.path>`, and once it succeeds its outputs (the files
matching the step's patterns, laid out as in the session folder) are stored with
:data:`STORE_OUTPUTS`: put into the bucket through the journaled bucket write path and
recorded as the session's datasets in one transaction
(:meth:`~neurotrove.trove.catalogue_writes.CatalogueWrites.commit_files`). The staging
folder is removed whatever happens, so a failed step, or one whose outputs could not be
stored, leaves neither objects nor local files.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import alf
from ..errors import ValidationError
from ..files.atomic import STAGING_FOLDER
from ..files.hashing import file_md5
from ..files.paths import inside_root
from ..trove.catalogue_writes import file_record
from ..trove.operations import Operation
from .outputs import output_files

if TYPE_CHECKING:
    from ..trove.catalogue_writes import CatalogueWrites
    from ..trove.trove import Trove
    from .runner import SessionRecord

__all__ = ["STORE_OUTPUTS", "BucketOutputs"]

log = logging.getLogger("neurotrove.pipeline")


class BucketOutputs:
    """Stages each session's outputs locally and stores them in the trove's bucket.

    Parameters
    ----------
    trove : Trove
        A local trove whose files are in a bucket.
    step : str
        The step whose outputs are staged (one folder per step and session).
    """

    def __init__(self, trove: Trove, step: str) -> None:
        self._trove = trove
        self.home = trove.root / STAGING_FOLDER / "pipeline" / step

    def place(self, session: SessionRecord) -> SessionRecord:
        """Return ``session`` with its staging folder as the path the step writes in."""
        return replace(session, path=self.home / session.eid)

    def prepare(self, session: SessionRecord) -> None:
        """Empty the session's staging folder (of an abandoned attempt) and create it."""
        self.discard(session)
        session.path.mkdir(parents=True)

    def commit(self, session: SessionRecord, patterns: Sequence[str]) -> list[str]:
        """Store the staged outputs as datasets of the session; return their ids.

        Raises
        ------
        ValidationError
            When an output is not named as an ALF dataset (``object.attribute.ext``).
        ConflictError, HashMismatchError
            As the bucket write path raises them.
        """
        files = sorted(output_files(session.path, patterns))
        other = sorted(set(output_files(session.path, ["**"])) - set(files))
        if other:
            log.warning(
                "%s: step %s wrote %d files that match none of its outputs (%s); they are "
                "not stored (add their pattern to the step's outputs to keep them)",
                session.eid,
                session.step,
                len(other),
                ", ".join(other[:3]),
            )
        if not files:
            return []
        result: list[str] = self._trove.apply(STORE_OUTPUTS, session.eid, session.path, files)
        return result

    def discard(self, session: SessionRecord) -> None:
        """Remove the session's staging folder and everything in it."""
        if session.path.exists():
            shutil.rmtree(session.path)


def _store_outputs(
    writes: CatalogueWrites, trove: Trove, eid: str, staged: Path, files: Sequence[str]
) -> list[str]:
    eid, folder = writes.session(eid)
    with writes.file_write() as write:
        records: list[dict[str, Any]] = []
        for relative in files:
            source = staged / relative
            if source.is_symlink() or not source.is_file():
                raise ValidationError(
                    f"step output {relative} in {staged} is not a regular file; a step "
                    f"on a trove whose files are in a bucket writes files, not links",
                    path=str(source),
                )
            try:
                rel = alf.parse_rel_path(relative)
            except ValidationError as error:
                raise ValidationError(
                    f"step output {relative} is not named as a dataset ({error.message}); on "
                    f"a trove whose files are in a bucket ({writes.store}) a step's outputs "
                    f"are stored as datasets: name it collection/object.attribute.ext",
                    path=relative,
                ) from None
            size, md5 = source.stat().st_size, file_md5(source)
            write.stage_link(
                source,
                inside_root(writes.root, folder / str(rel)),
                size=size,
                md5=md5,
                dataset=(eid, str(rel)),
            )
            records.append(file_record(eid, rel, size, md5, None, True))
        # A step run again (set pending) writes its outputs anew, as it would on disk.
        return writes.commit_files(eid, folder, records, write, replace=True)


STORE_OUTPUTS = Operation[list[str]](
    "pipeline store outputs",
    direct=_store_outputs,
    advice="run the pipeline where the trove is, e.g. on the server with nt.connect(<data root>)",
)
"""Store a step's staged outputs as datasets: ``(eid, staging folder, relative paths)``."""

"""What an ephys import did: sessions, probes, channels and units written, and what was not."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ImportReport"]


@dataclass
class ImportReport:
    """The outcome of ``import_alf``, ``import_nwb`` or ``import_allen``.

    Attributes
    ----------
    sessions : list of str
        The eids whose probes were written (each in its own transaction).
    probes, channels, units : int
        Rows written.
    skipped : list of (str, str)
        What was not imported and why, e.g. ``("KS005/2019-04-01/001 alf/probe01", "...")``.
    """

    sessions: list[str] = field(default_factory=list)
    probes: int = 0
    channels: int = 0
    units: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [
            f"imported {len(self.sessions)} sessions: {self.probes} probes, "
            f"{self.channels} channels, {self.units} units"
        ]
        lines += [f"  not imported: {what}: {why}" for what, why in self.skipped]
        return "\n".join(lines)

    def add(self, eid: str, probes: int, channels: int, units: int) -> None:
        """Count one session's writes."""
        self.sessions.append(eid)
        self.probes += probes
        self.channels += channels
        self.units += units

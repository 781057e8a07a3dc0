"""Quality-control outcomes, numbered as in ONE and Alyx.

Examples
--------
>>> from neurotrove.qc import QC
>>> QC.parse("warning")
<QC.WARNING: 30>
>>> QC.parse(40) <= QC.FAIL
True
"""

from __future__ import annotations

from enum import IntEnum

from .errors import ValidationError

__all__ = ["QC"]


class QC(IntEnum):
    """The outcome of a quality check, worst last.

    ``NOT_SET`` means nobody has looked yet; ``CRITICAL`` means the data are unusable.
    Comparisons follow the numbers, so ``qc <= QC.WARNING`` means "WARNING or better".
    """

    NOT_SET = 0
    PASS = 10
    WARNING = 30
    FAIL = 40
    CRITICAL = 50

    @classmethod
    def parse(cls, value: object) -> QC:
        """Return the QC outcome named or numbered by ``value``.

        Parameters
        ----------
        value : QC, int or str
            A QC member, its number (``30``, ``"30"``) or its name in any case (``"warning"``).

        Returns
        -------
        QC

        Raises
        ------
        ValidationError
            When ``value`` names no QC outcome; the message lists the valid ones.

        Examples
        --------
        >>> QC.parse("PASS"), QC.parse(50)
        (<QC.PASS: 10>, <QC.CRITICAL: 50>)
        """
        if isinstance(value, cls):
            return value
        try:
            if isinstance(value, str):
                text = value.strip()
                return cls(int(text)) if text.isdigit() else cls[text.upper()]
            if isinstance(value, bool):
                raise TypeError
            if isinstance(value, float) and not value.is_integer():  # 10.5, inf, nan
                raise ValueError
            return cls(int(value))  # type: ignore[call-overload]
        except (KeyError, ValueError, TypeError, OverflowError):
            valid = ", ".join(f"{member.name} ({member.value})" for member in cls)
            raise ValidationError(
                f"{value!r} is not a QC outcome; use one of {valid}", value=value
            ) from None

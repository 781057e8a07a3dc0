"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

from ..errors import ValidationError

__all__ = ["JSONDocument", "UUIDString", "as_uuid_string"]

_HYPHENS = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def as_uuid_string(value: Any, field: str = "id") -> str:
    """Return ``value`` as a canonical lower-case hyphenated UUID string.

    Raises
    ------
    ValidationError
        When ``value`` is not a UUID; the message names the field.

    Examples
    --------
    >>> as_uuid_string("C7A2A7E4D9B14C5E9F0A1B2C3D4E5F60")
    'c7a2a7e4-d9b1-4c5e-9f0a-1b2c3d4e5f60'
    """
    if isinstance(value, uuid.UUID):
        return str(value)
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ValidationError(
            f"{field} {value!r} is not a UUID (expected e.g. "
            f"'c7a2a7e4-d9b1-4c5e-9f0a-1b2c3d4e5f60')",
            field=field,
            value=value,
        ) from None


class UUIDString(sa.types.TypeDecorator[str]):
    """A UUID that Python sees as a canonical string.

    PostgreSQL stores its native ``uuid``; SQLite stores the 16 raw bytes, half the size of
    the text form, which matters for tables of millions of datasets.
    """

    impl = sa.LargeBinary(16)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        """Use PostgreSQL's ``uuid`` type there, 16 bytes elsewhere."""
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.UUID(as_uuid=False))
        return dialect.type_descriptor(sa.LargeBinary(16))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """Accept a UUID or any string form of one."""
        if value is None:
            return None
        if dialect.name == "postgresql":
            if isinstance(value, str) and len(value) == 36 and _HYPHENS.fullmatch(value):
                return value  # the common case, as PostgreSQL reads it; 10x cheaper
            if isinstance(value, bytes) and len(value) == 16:
                return str(uuid.UUID(bytes=value))
            return as_uuid_string(value)
        if isinstance(value, uuid.UUID):
            return value.bytes
        if isinstance(value, bytes) and len(value) == 16:
            return value
        if isinstance(value, str) and len(value) == 36 and _HYPHENS.fullmatch(value):
            return bytes.fromhex(value.replace("-", ""))  # the common case, 4x cheaper
        return uuid.UUID(as_uuid_string(value)).bytes  # other forms; raises ValidationError

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        """Return the canonical hyphenated string."""
        if value is None:
            return None
        if isinstance(value, bytes):
            text = value.hex()
            return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
        return str(value)


JSONDocument = sa.JSON(none_as_null=True).with_variant(
    postgresql.JSONB(none_as_null=True), "postgresql"
)
"""A JSON document column: ``JSONB`` on PostgreSQL, JSON text on SQLite."""

"""The catalogue: schema, migrations and storage on SQLite or PostgreSQL (SQLAlchemy 2)."""

# The ephys tables join the core ones on the shared metadata whenever the catalogue is used.
from . import ephys_schema as _ephys_schema  # noqa: F401

"""The catalogue: schema, migrations and storage on SQLite or PostgreSQL (SQLAlchemy 2)."""

# The processing-status, ephys, behaviour and analysis tables join the core ones on the shared
# metadata whenever the catalogue is used, so that migrations, snapshots and backups always
# include them.
from . import analysis_schema as _analysis_schema  # noqa: F401
from . import behaviour_schema as _behaviour_schema  # noqa: F401
from . import ephys_schema as _ephys_schema  # noqa: F401
from . import pipeline_schema as _pipeline_schema  # noqa: F401

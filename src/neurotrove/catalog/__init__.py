"""The catalogue: schema, migrations and storage on SQLite or PostgreSQL (SQLAlchemy 2)."""

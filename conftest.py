"""Collection settings for the doctests in src/ (tests/ has its own conftest)."""

# Alembic's env.py only runs inside a migration; importing it on its own fails.
collect_ignore_glob = ["src/neurotrove/catalog/migrations/*"]

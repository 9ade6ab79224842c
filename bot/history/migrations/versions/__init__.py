"""Alembic revisions of the history schema, oldest first (``0001_baseline`` is the schema before migrations)."""

"""Alembic migrations of the history schema (run through :mod:`bot.history.migrate`)."""

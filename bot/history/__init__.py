"""History: the database, migrations, progress, export, users."""

"""The case store: SQLAlchemy 2 on SQLite (default) or PostgreSQL (``DATABASE_URL``)."""

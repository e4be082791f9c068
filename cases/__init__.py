"""The case store: SQLAlchemy 2 models, the repository, and Alembic migrations."""

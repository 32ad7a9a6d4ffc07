"""SqliteSessionService: the reference runtime's SQLite service, given a file path."""

from __future__ import annotations

from app.sessions.database_session_service import DatabaseSessionService


class SqliteSessionService(DatabaseSessionService):
    """A DatabaseSessionService on the SQLite file at `db_path` (`:memory:` for one in memory).

    The schema is created on first use when the file is new or empty, as for any
    DatabaseSessionService.
    """

    def __init__(self, db_path: str) -> None:
        super().__init__(f"sqlite+aiosqlite:///{db_path}")

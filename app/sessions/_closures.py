"""Close watermarks: how far each session was added to memory, claimed atomically.

A close advances the session's `closed_seq` from the value it read to the session's newest
`seq` with a compare-and-set (an UPDATE guarded by the old value, or an INSERT that only one
writer can win), so of two replicas closing one session only one proceeds.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from app.sessions._engine import transaction_engine
from app.sessions._schema import session_closures, sessions

SessionKey = tuple[str, str, str]

_c = session_closures.c
_s = sessions.c


def _matches(key: SessionKey) -> list[sa.ColumnElement[bool]]:
    app_name, user_id, session_id = key
    return [_c.app_name == app_name, _c.user_id == user_id, _c.session_id == session_id]


class ClosureSql:
    """The statements behind `claim_close`, `release_close` and `list_unclosed_sessions`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._write_engine = (
            engine if engine.dialect.name == "postgresql" else transaction_engine(engine)
        )

    async def claim(self, key: SessionKey, up_to_seq: int) -> int | None:
        """Advance the watermark to `up_to_seq`; return the old one, or None if not lower."""
        while True:
            async with self._engine.connect() as conn:
                previous = (
                    await conn.execute(sa.select(_c.closed_seq).where(*_matches(key)))
                ).scalar_one_or_none()
            if previous is not None and previous >= up_to_seq:
                return None
            swapped = await self._swap(key, previous, up_to_seq)
            if swapped is None:
                return None  # the session was deleted meanwhile
            if swapped:
                return previous or 0
            # Another close moved the watermark in between: look again.

    async def release(self, key: SessionKey, claimed: int, previous: int) -> None:
        """Put the watermark back to `previous`, unless it moved on from `claimed` since."""
        async with self._write_engine.begin() as conn:
            await conn.execute(
                sa.update(session_closures)
                .where(*_matches(key), _c.closed_seq == claimed)
                .values(closed_seq=previous)
            )

    async def _swap(self, key: SessionKey, expected: int | None, new: int) -> bool | None:
        """Compare-and-set the watermark; None when the session no longer exists."""
        now = time.time()
        try:
            async with self._write_engine.begin() as conn:
                if expected is None:
                    result = await conn.execute(
                        sa.insert(session_closures).values(
                            app_name=key[0],
                            user_id=key[1],
                            session_id=key[2],
                            closed_seq=new,
                            close_time=now,
                        )
                    )
                else:
                    result = await conn.execute(
                        sa.update(session_closures)
                        .where(*_matches(key), _c.closed_seq == expected)
                        .values(closed_seq=new, close_time=now)
                    )
                return bool(result.rowcount)
        except sa_exc.IntegrityError:
            # The key exists (another close inserted it first): the caller reads it again;
            # or the session is gone (foreign key): the next read finds nothing to close.
            async with self._engine.connect() as conn:
                exists = (
                    await conn.execute(sa.select(_s.seq).where(*_session_matches(key)))
                ).scalar_one_or_none()
            return None if exists is None else False

    async def unclosed(
        self, app_names: Sequence[str], updated_before: float, limit: int
    ) -> list[SessionKey]:
        """Return sessions of these apps idle since `updated_before` with events not closed."""
        if not app_names or limit < 1:
            return []
        joined = sessions.outerjoin(
            session_closures,
            sa.and_(_c.app_name == _s.app_name, _c.user_id == _s.user_id, _c.session_id == _s.id),
        )
        stmt = (
            sa.select(_s.app_name, _s.user_id, _s.id)
            .select_from(joined)
            .where(
                _s.app_name.in_(list(app_names)),
                _s.update_time < updated_before,
                _s.seq > sa.func.coalesce(_c.closed_seq, 0),
            )
            .order_by(_s.update_time)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [(row[0], row[1], row[2]) for row in rows]


def _session_matches(key: SessionKey) -> list[sa.ColumnElement[bool]]:
    app_name, user_id, session_id = key
    return [_s.app_name == app_name, _s.user_id == user_id, _s.id == session_id]

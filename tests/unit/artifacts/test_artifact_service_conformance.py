"""One suite for every artifact service: in memory, SQLite and Postgres behave alike.

The database backends also prove what memory cannot: versions survive a new service on the
same database, concurrent saves (also from two services, like two replicas) get distinct
dense versions, bytes round-trip exactly, and the per-version size cap holds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from google.genai import types
from sqlalchemy import pool

from app.artifacts import (
    BaseArtifactService,
    DatabaseArtifactService,
    InMemoryArtifactService,
)
from app.artifacts.database_artifact_service import DEFAULT_MAX_BYTES
from app.errors import (
    ConfigError,
    DatabaseUnavailableError,
    InvalidRequestError,
    PayloadTooLargeError,
)
from app.sessions import DatabaseSessionService
from app.sessions._engine import create_engine, transaction_engine
from app.sessions.migration import alembic_config, current_revision, head_revision, upgrade

APP, USER = "app", "u1"
BACKENDS = ["memory", "sqlite", "postgres"]
DATABASE_BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=DATABASE_BACKENDS)
def db_url(request: pytest.FixtureRequest) -> str:
    """URL of a fresh migrated database, on each database backend."""
    name = "pg_db_url" if request.param == "postgres" else "sqlite_db_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture(params=BACKENDS)
async def service(request: pytest.FixtureRequest) -> AsyncIterator[BaseArtifactService]:
    """An artifact service on each backend (databases fresh and migrated)."""
    svc: BaseArtifactService
    if request.param == "memory":
        svc = InMemoryArtifactService()
    else:
        name = "pg_db_url" if request.param == "postgres" else "sqlite_db_url"
        svc = DatabaseArtifactService(request.getfixturevalue(name))
    try:
        yield svc
    finally:
        await svc.close()


def text(value: str) -> types.Part:
    return types.Part(text=value)


def blob(data: bytes, mime: str = "image/png") -> types.Part:
    return types.Part(inline_data=types.Blob(mime_type=mime, data=data))


async def save(
    service: BaseArtifactService, filename: str, part: types.Part, session_id: str | None = "s1"
) -> int:
    return await service.save_artifact(
        app_name=APP, user_id=USER, session_id=session_id, filename=filename, artifact=part
    )


async def load(
    service: BaseArtifactService,
    filename: str,
    session_id: str | None = "s1",
    version: int | None = None,
) -> types.Part | None:
    return await service.load_artifact(
        app_name=APP, user_id=USER, session_id=session_id, filename=filename, version=version
    )


async def keys(service: BaseArtifactService, session_id: str | None = "s1") -> list[str]:
    return await service.list_artifact_keys(app_name=APP, user_id=USER, session_id=session_id)


async def versions(
    service: BaseArtifactService, filename: str, session_id: str | None = "s1"
) -> list[int]:
    return await service.list_versions(
        app_name=APP, user_id=USER, session_id=session_id, filename=filename
    )


# --- versions ----------------------------------------------------------------------------


async def test_versions_start_at_zero_and_are_dense(service: BaseArtifactService) -> None:
    saved = [await save(service, "notes.txt", text(f"v{i}")) for i in range(3)]

    assert saved == [0, 1, 2]
    assert await versions(service, "notes.txt") == [0, 1, 2]


async def test_each_filename_has_its_own_version_sequence(service: BaseArtifactService) -> None:
    await save(service, "a.txt", text("a0"))
    await save(service, "a.txt", text("a1"))

    assert await save(service, "b.txt", text("b0")) == 0


async def test_load_without_version_returns_the_latest(service: BaseArtifactService) -> None:
    await save(service, "notes.txt", text("first"))
    await save(service, "notes.txt", text("second"))

    assert await load(service, "notes.txt") == text("second")


async def test_load_specific_version(service: BaseArtifactService) -> None:
    await save(service, "pic.png", blob(b"\x01"))
    await save(service, "pic.png", blob(b"\x02"))

    assert await load(service, "pic.png", version=0) == blob(b"\x01")
    assert await load(service, "pic.png", version=1) == blob(b"\x02")


async def test_load_of_a_missing_artifact_returns_none(service: BaseArtifactService) -> None:
    assert await load(service, "nothing.txt") is None
    assert await load(service, "nothing.txt", version=0) is None


@pytest.mark.parametrize("version", [1, 5, -1, 2**70])
async def test_load_of_a_missing_version_returns_none(
    service: BaseArtifactService, version: int
) -> None:
    await save(service, "one.txt", text("x"))

    assert await load(service, "one.txt", version=version) is None


async def test_versions_restart_at_zero_after_delete(service: BaseArtifactService) -> None:
    await save(service, "notes.txt", text("v0"))
    await save(service, "notes.txt", text("v1"))
    await service.delete_artifact(app_name=APP, user_id=USER, session_id="s1", filename="notes.txt")

    assert await save(service, "notes.txt", text("again")) == 0


# --- scopes ------------------------------------------------------------------------------


async def test_user_scoped_artifact_is_shared_by_the_users_sessions(
    service: BaseArtifactService,
) -> None:
    await save(service, "user:profile.txt", text("Ada"), session_id="s1")

    assert await load(service, "user:profile.txt", session_id="s2") == text("Ada")
    assert await save(service, "user:profile.txt", text("Ada L."), session_id="s2") == 1
    assert await load(service, "user:profile.txt", session_id="s1") == text("Ada L.")
    assert await versions(service, "user:profile.txt", session_id=None) == [0, 1]


async def test_user_scoped_artifact_is_not_shared_with_other_users(
    service: BaseArtifactService,
) -> None:
    await save(service, "user:profile.txt", text("Ada"))

    other = await service.load_artifact(
        app_name=APP, user_id="u2", session_id="s1", filename="user:profile.txt"
    )

    assert other is None
    assert await service.list_artifact_keys(app_name=APP, user_id="u2", session_id="s1") == []


async def test_session_scoped_artifact_is_invisible_to_other_sessions(
    service: BaseArtifactService,
) -> None:
    await save(service, "draft.txt", text("s1 only"), session_id="s1")

    assert await load(service, "draft.txt", session_id="s2") is None
    assert await keys(service, session_id="s2") == []
    assert await save(service, "draft.txt", text("s2's own"), session_id="s2") == 0
    assert await load(service, "draft.txt", session_id="s1") == text("s1 only")


async def test_artifacts_are_isolated_by_app(service: BaseArtifactService) -> None:
    await save(service, "user:profile.txt", text("Ada"))
    await save(service, "notes.txt", text("n"))

    assert await service.list_artifact_keys(app_name="other", user_id=USER, session_id="s1") == []
    assert (
        await service.load_artifact(
            app_name="other", user_id=USER, session_id="s1", filename="notes.txt"
        )
        is None
    )


async def test_list_keys_is_sorted_and_includes_user_scoped_names(
    service: BaseArtifactService,
) -> None:
    await save(service, "zeta.txt", text("z"), session_id="s1")
    await save(service, "alpha.txt", text("a"), session_id="s1")
    await save(service, "alpha.txt", text("a2"), session_id="s1")
    await save(service, "Beta.txt", text("b"), session_id="s1")
    await save(service, "user:prefs.json", text("{}"), session_id="s9")
    await save(service, "other.txt", text("o"), session_id="s2")

    assert await keys(service, session_id="s1") == [
        "Beta.txt",
        "alpha.txt",
        "user:prefs.json",
        "zeta.txt",
    ]


@pytest.mark.parametrize("orphan", ["orphan.txt", "USER:orphan.txt"])
async def test_every_listed_key_can_be_loaded_from_that_session(
    service: BaseArtifactService, orphan: str
) -> None:
    await save(service, orphan, text("x"), session_id=None)
    await save(service, "mine.txt", text("y"), session_id="s1")

    assert await keys(service, session_id="s1") == ["mine.txt"]
    for name in await keys(service, session_id="s1"):
        assert await load(service, name, session_id="s1") is not None, name
    assert await load(service, orphan, session_id=None) == text("x")


# --- metadata ----------------------------------------------------------------------------


async def test_version_metadata_records_mime_size_and_time(service: BaseArtifactService) -> None:
    before = time.time()
    await save(service, "pic.png", blob(b"12345", mime="image/png"))
    await service.save_artifact(
        app_name=APP,
        user_id=USER,
        session_id="s1",
        filename="pic.png",
        artifact=text("héllo"),
        custom_metadata={"source": "camera", "nested": {"n": [1, 2.5, None, True]}},
    )
    after = time.time()

    metas = await service.list_artifact_versions(
        app_name=APP, user_id=USER, session_id="s1", filename="pic.png"
    )

    assert [m.version for m in metas] == [0, 1]
    assert (metas[0].mime_type, metas[0].size_bytes) == ("image/png", 5)
    assert metas[0].custom_metadata == {}
    assert (metas[1].mime_type, metas[1].size_bytes) == (None, len("héllo".encode()))
    assert metas[1].custom_metadata == {"source": "camera", "nested": {"n": [1, 2.5, None, True]}}
    assert before <= metas[0].create_time <= metas[1].create_time <= after


async def test_list_versions_of_a_missing_artifact_is_empty(service: BaseArtifactService) -> None:
    assert await versions(service, "none") == []
    assert (
        await service.list_artifact_versions(
            app_name=APP, user_id=USER, session_id="s1", filename="none"
        )
        == []
    )


# --- delete ------------------------------------------------------------------------------


async def test_delete_removes_every_version(service: BaseArtifactService) -> None:
    await save(service, "notes.txt", text("v0"))
    await save(service, "notes.txt", text("v1"))
    await save(service, "keep.txt", text("k"))
    await save(service, "notes.txt", text("other session"), session_id="s2")

    await service.delete_artifact(app_name=APP, user_id=USER, session_id="s1", filename="notes.txt")

    assert await load(service, "notes.txt") is None
    assert await load(service, "notes.txt", version=0) is None
    assert await versions(service, "notes.txt") == []
    assert await keys(service) == ["keep.txt"]
    assert await load(service, "notes.txt", session_id="s2") == text("other session")


async def test_delete_of_a_user_scoped_artifact_from_any_session(
    service: BaseArtifactService,
) -> None:
    await save(service, "user:prefs.json", text("{}"), session_id="s1")

    await service.delete_artifact(
        app_name=APP, user_id=USER, session_id="s2", filename="user:prefs.json"
    )

    assert await keys(service, session_id="s1") == []


async def test_delete_of_a_missing_artifact_is_a_no_op(service: BaseArtifactService) -> None:
    await service.delete_artifact(app_name=APP, user_id=USER, session_id="s1", filename="none")

    assert await keys(service) == []


# --- input and copies --------------------------------------------------------------------


@pytest.mark.parametrize(
    "part",
    [types.Part(), types.Part(function_call=types.FunctionCall(name="f"))],
    ids=["empty", "function-call"],
)
async def test_part_without_data_is_rejected(
    service: BaseArtifactService, part: types.Part
) -> None:
    with pytest.raises(ValueError, match="inline_data or text"):
        await save(service, "bad.bin", part)

    assert await keys(service) == []


async def test_saved_version_is_unaffected_by_later_changes_to_the_callers_part(
    service: BaseArtifactService,
) -> None:
    part = text("draft 1")
    await save(service, "notes.txt", part)

    part.text = "draft 2"

    assert await load(service, "notes.txt", version=0) == text("draft 1")


async def test_changing_a_loaded_part_does_not_change_the_stored_version(
    service: BaseArtifactService,
) -> None:
    await save(service, "notes.txt", blob(b"original"))
    loaded = await load(service, "notes.txt")
    assert loaded is not None and loaded.inline_data is not None

    loaded.inline_data.data = b"scribbled"

    assert await load(service, "notes.txt") == blob(b"original")


@pytest.mark.parametrize(
    "part",
    [
        blob(b"\x00head\x00\xff\xfe" + bytes(range(256)) + b"\x00"),
        blob(b"", mime="application/octet-stream"),
        text(""),
        text("ünïcødé ✓ 🎉\nline two\ttab"),
        types.Part(text="caption", inline_data=types.Blob(mime_type="image/gif", data=b"\x00")),
    ],
    ids=["bytes-with-nuls", "empty-bytes", "empty-text", "unicode-text", "text-and-data"],
)
async def test_parts_round_trip_exactly(service: BaseArtifactService, part: types.Part) -> None:
    await save(service, "file", part)

    assert await load(service, "file") == part


async def test_large_binary_round_trips(service: BaseArtifactService) -> None:
    data = bytes(range(256)) * 4096 + b"\x00"  # 1 MiB and a NUL

    await save(service, "big.bin", blob(data, mime="application/octet-stream"))

    loaded = await load(service, "big.bin")
    assert loaded is not None and loaded.inline_data is not None
    assert loaded.inline_data.data == data


# --- concurrency -------------------------------------------------------------------------


async def test_concurrent_saves_get_distinct_dense_versions(service: BaseArtifactService) -> None:
    n = 20

    saved = await asyncio.gather(*(save(service, "race.txt", text(f"v{i}")) for i in range(n)))

    assert sorted(saved) == list(range(n))
    assert await versions(service, "race.txt") == list(range(n))
    # Each returned number names the content its own save stored.
    for i, version in enumerate(saved):
        assert await load(service, "race.txt", version=version) == text(f"v{i}")


async def test_concurrent_saves_from_two_services_share_one_sequence(db_url: str) -> None:
    first, second = DatabaseArtifactService(db_url), DatabaseArtifactService(db_url)
    try:
        saves = [
            save(svc, "user:shared.txt", text(f"{name}{i}"), session_id=f"s{i}")
            for i in range(10)
            for name, svc in (("a", first), ("b", second))
        ]
        saved = await asyncio.gather(*saves)

        assert sorted(saved) == list(range(20))
        assert await versions(first, "user:shared.txt") == list(range(20))
    finally:
        await first.close()
        await second.close()


# --- durability, sharing and limits (databases only) --------------------------------------


async def test_artifacts_survive_a_new_service_on_the_same_database(db_url: str) -> None:
    data = b"\x00\x01binary\x00"
    before = DatabaseArtifactService(db_url)
    try:
        await save(before, "pic.bin", blob(data, mime="application/octet-stream"))
        await save(before, "pic.bin", text("second"))
        await save(before, "user:prefs.json", text('{"a": 1}'), session_id="s7")
        metas = await before.list_artifact_versions(
            app_name=APP, user_id=USER, session_id="s1", filename="pic.bin"
        )
    finally:
        await before.close()

    after = DatabaseArtifactService(db_url)
    try:
        assert await keys(after) == ["pic.bin", "user:prefs.json"]
        assert await load(after, "pic.bin", version=0) == blob(
            data, mime="application/octet-stream"
        )
        assert await load(after, "pic.bin") == text("second")
        assert (
            await after.list_artifact_versions(
                app_name=APP, user_id=USER, session_id="s1", filename="pic.bin"
            )
            == metas
        )
        assert await save(after, "pic.bin", text("third")) == 2
    finally:
        await after.close()


async def test_service_shares_the_session_services_engine(db_url: str) -> None:
    sessions = DatabaseSessionService(db_url)
    try:
        artifacts = DatabaseArtifactService(engine=sessions.engine)
        session = await sessions.create_session(app_name=APP, user_id=USER, session_id="s1")
        assert await save(artifacts, "notes.txt", text("n"), session_id=session.id) == 0
        await artifacts.close()  # not its engine: must leave the pool open

        assert await sessions.get_session(app_name=APP, user_id=USER, session_id="s1")
        assert await load(artifacts, "notes.txt") == text("n")
    finally:
        await sessions.close()


async def test_engine_and_url_together_are_rejected(db_url: str) -> None:
    sessions = DatabaseSessionService(db_url)
    try:
        with pytest.raises(ConfigError, match="either"):
            DatabaseArtifactService(db_url, engine=sessions.engine)
        with pytest.raises(ConfigError, match="max_bytes"):
            DatabaseArtifactService(engine=sessions.engine, max_bytes=0)
    finally:
        await sessions.close()


async def test_size_cap_rejects_larger_versions_and_stores_nothing(db_url: str) -> None:
    service = DatabaseArtifactService(db_url, max_bytes=10)
    try:
        assert service.max_bytes == 10
        assert await save(service, "ok.bin", blob(b"\x00" * 10)) == 0
        assert await save(service, "ok.txt", text("é" * 5)) == 0  # 10 bytes of UTF-8

        with pytest.raises(PayloadTooLargeError, match=r"'big.bin' is 11 bytes; the limit is 10"):
            await save(service, "big.bin", blob(b"\x00" * 11))
        with pytest.raises(PayloadTooLargeError, match="11 bytes"):
            await save(service, "big.txt", text("é" * 5 + "!"))
        with pytest.raises(PayloadTooLargeError, match="12 bytes"):  # text and data together
            await save(
                service,
                "both",
                types.Part(text="123456", inline_data=types.Blob(mime_type="a/b", data=b"123456")),
            )

        assert await keys(service) == ["ok.bin", "ok.txt"]
        assert PayloadTooLargeError.code == "payload_too_large"
    finally:
        await service.close()


async def test_text_with_a_nul_character_is_rejected(db_url: str) -> None:
    # Postgres text cannot hold U+0000; both databases refuse it alike, before writing.
    service = DatabaseArtifactService(db_url)
    try:
        with pytest.raises(InvalidRequestError, match="NUL"):
            await save(service, "nul.txt", text("a\x00b"))
        assert await keys(service) == []
    finally:
        await service.close()


async def test_default_size_cap_is_16_mib(db_url: str) -> None:
    service = DatabaseArtifactService(db_url)
    try:
        assert service.max_bytes == DEFAULT_MAX_BYTES == 16 * 1024 * 1024
        with pytest.raises(PayloadTooLargeError):
            await save(service, "huge.bin", blob(b"\x00" * (DEFAULT_MAX_BYTES + 1)))
    finally:
        await service.close()


# --- schema and failures ------------------------------------------------------------------


@pytest.fixture(params=DATABASE_BACKENDS)
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of a database with no tables yet, on each database backend."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_empty_db_url")
        return url
    return f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"


async def _tables(url: str) -> set[str]:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def _downgrade(url: str, revision: str) -> None:
    config = alembic_config()
    engine = create_engine(url, poolclass=pool.NullPool)

    def run(connection: sa.Connection) -> None:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    try:
        async with transaction_engine(engine).connect() as conn:
            await conn.run_sync(run)
            await conn.commit()
    finally:
        await engine.dispose()


async def test_unmigrated_database_is_reported_as_unavailable(empty_db_url: str) -> None:
    service = DatabaseArtifactService(empty_db_url)
    try:
        with pytest.raises(DatabaseUnavailableError, match="agent-service migrate"):
            await load(service, "notes.txt")
        with pytest.raises(DatabaseUnavailableError, match="agent-service migrate"):
            await save(service, "notes.txt", text("n"))
    finally:
        await service.close()


async def test_unreachable_database_is_reported_as_unavailable() -> None:
    # Port 9 (discard) on loopback: refused at once.
    service = DatabaseArtifactService("postgresql+asyncpg://u:secret@127.0.0.1:9/db")
    try:
        with pytest.raises(DatabaseUnavailableError) as raised:
            await keys(service)
        assert "secret" not in str(raised.value)
    finally:
        await service.close()


async def test_artifacts_migration_upgrades_downgrades_and_reruns(empty_db_url: str) -> None:
    await upgrade(empty_db_url, "0001")
    assert "artifacts" not in await _tables(empty_db_url)

    await upgrade(empty_db_url)
    assert await current_revision(empty_db_url) == head_revision()
    assert {"sessions", "events", "artifacts"} <= await _tables(empty_db_url)

    service = DatabaseArtifactService(empty_db_url)
    try:
        await save(service, "kept.txt", text("kept"))
        await upgrade(empty_db_url)  # again: a no-op, data included
        assert await load(service, "kept.txt") == text("kept")
    finally:
        await service.close()

    await _downgrade(empty_db_url, "0001")
    assert await current_revision(empty_db_url) == "0001"
    tables = await _tables(empty_db_url)
    assert "artifacts" not in tables and "sessions" in tables

    await upgrade(empty_db_url)
    assert "artifacts" in await _tables(empty_db_url)

"""InMemoryArtifactService: versions, scopes, listing and deletion."""

from __future__ import annotations

import time

import pytest
from google.genai import types

from app.artifacts import InMemoryArtifactService

APP, USER = "app", "u1"


@pytest.fixture
def service() -> InMemoryArtifactService:
    return InMemoryArtifactService()


def text(value: str) -> types.Part:
    return types.Part(text=value)


def blob(data: bytes, mime: str = "image/png") -> types.Part:
    return types.Part(inline_data=types.Blob(mime_type=mime, data=data))


async def save(
    service: InMemoryArtifactService, filename: str, part: types.Part, session_id: str = "s1"
) -> int:
    return await service.save_artifact(
        app_name=APP, user_id=USER, session_id=session_id, filename=filename, artifact=part
    )


async def load(
    service: InMemoryArtifactService,
    filename: str,
    session_id: str = "s1",
    version: int | None = None,
) -> types.Part | None:
    return await service.load_artifact(
        app_name=APP, user_id=USER, session_id=session_id, filename=filename, version=version
    )


async def keys(service: InMemoryArtifactService, session_id: str = "s1") -> list[str]:
    return await service.list_artifact_keys(app_name=APP, user_id=USER, session_id=session_id)


async def test_versions_start_at_zero_and_are_dense(service: InMemoryArtifactService) -> None:
    versions = [await save(service, "notes.txt", text(f"v{i}")) for i in range(3)]

    assert versions == [0, 1, 2]
    assert await service.list_versions(
        app_name=APP, user_id=USER, session_id="s1", filename="notes.txt"
    ) == [0, 1, 2]


async def test_each_filename_has_its_own_version_sequence(
    service: InMemoryArtifactService,
) -> None:
    await save(service, "a.txt", text("a0"))
    await save(service, "a.txt", text("a1"))

    assert await save(service, "b.txt", text("b0")) == 0


async def test_load_without_version_returns_the_latest(service: InMemoryArtifactService) -> None:
    await save(service, "notes.txt", text("first"))
    await save(service, "notes.txt", text("second"))

    assert await load(service, "notes.txt") == text("second")


async def test_load_specific_version(service: InMemoryArtifactService) -> None:
    await save(service, "pic.png", blob(b"\x01"))
    await save(service, "pic.png", blob(b"\x02"))

    assert await load(service, "pic.png", version=0) == blob(b"\x01")
    assert await load(service, "pic.png", version=1) == blob(b"\x02")


async def test_load_of_a_missing_artifact_returns_none(service: InMemoryArtifactService) -> None:
    assert await load(service, "nothing.txt") is None
    assert await load(service, "nothing.txt", version=0) is None


@pytest.mark.parametrize("version", [1, 5, -1])
async def test_load_of_a_missing_version_returns_none(
    service: InMemoryArtifactService, version: int
) -> None:
    await save(service, "one.txt", text("x"))

    assert await load(service, "one.txt", version=version) is None


async def test_user_scoped_artifact_is_shared_by_the_users_sessions(
    service: InMemoryArtifactService,
) -> None:
    await save(service, "user:profile.txt", text("Ada"), session_id="s1")

    assert await load(service, "user:profile.txt", session_id="s2") == text("Ada")
    assert await save(service, "user:profile.txt", text("Ada L."), session_id="s2") == 1
    assert await load(service, "user:profile.txt", session_id="s1") == text("Ada L.")


async def test_user_scoped_artifact_is_not_shared_with_other_users(
    service: InMemoryArtifactService,
) -> None:
    await save(service, "user:profile.txt", text("Ada"))

    other = await service.load_artifact(
        app_name=APP, user_id="u2", session_id="s1", filename="user:profile.txt"
    )

    assert other is None


async def test_session_scoped_artifact_is_invisible_to_other_sessions(
    service: InMemoryArtifactService,
) -> None:
    await save(service, "draft.txt", text("s1 only"), session_id="s1")

    assert await load(service, "draft.txt", session_id="s2") is None
    assert await keys(service, session_id="s2") == []
    assert await save(service, "draft.txt", text("s2's own"), session_id="s2") == 0


async def test_artifacts_are_isolated_by_app(service: InMemoryArtifactService) -> None:
    await save(service, "user:profile.txt", text("Ada"))

    assert await service.list_artifact_keys(app_name="other", user_id=USER, session_id="s1") == []


async def test_list_keys_is_sorted_and_includes_user_scoped_names(
    service: InMemoryArtifactService,
) -> None:
    await save(service, "zeta.txt", text("z"), session_id="s1")
    await save(service, "alpha.txt", text("a"), session_id="s1")
    await save(service, "alpha.txt", text("a2"), session_id="s1")
    await save(service, "user:prefs.json", text("{}"), session_id="s9")
    await save(service, "other.txt", text("o"), session_id="s2")

    assert await keys(service, session_id="s1") == ["alpha.txt", "user:prefs.json", "zeta.txt"]


async def test_version_metadata_records_mime_size_and_time(
    service: InMemoryArtifactService,
) -> None:
    before = time.time()
    await save(service, "pic.png", blob(b"12345", mime="image/png"))
    await service.save_artifact(
        app_name=APP,
        user_id=USER,
        session_id="s1",
        filename="pic.png",
        artifact=text("héllo"),
        custom_metadata={"source": "camera"},
    )
    after = time.time()

    metas = await service.list_artifact_versions(
        app_name=APP, user_id=USER, session_id="s1", filename="pic.png"
    )

    assert [m.version for m in metas] == [0, 1]
    assert (metas[0].mime_type, metas[0].size_bytes) == ("image/png", 5)
    assert metas[1].size_bytes == len("héllo".encode())
    assert metas[1].custom_metadata == {"source": "camera"}
    assert before <= metas[0].create_time <= metas[1].create_time <= after


async def test_list_versions_of_a_missing_artifact_is_empty(
    service: InMemoryArtifactService,
) -> None:
    assert (
        await service.list_versions(app_name=APP, user_id=USER, session_id="s1", filename="none")
        == []
    )
    assert (
        await service.list_artifact_versions(
            app_name=APP, user_id=USER, session_id="s1", filename="none"
        )
        == []
    )


async def test_delete_removes_every_version(service: InMemoryArtifactService) -> None:
    await save(service, "notes.txt", text("v0"))
    await save(service, "notes.txt", text("v1"))
    await save(service, "keep.txt", text("k"))

    await service.delete_artifact(app_name=APP, user_id=USER, session_id="s1", filename="notes.txt")

    assert await load(service, "notes.txt") is None
    assert await load(service, "notes.txt", version=0) is None
    assert (
        await service.list_versions(
            app_name=APP, user_id=USER, session_id="s1", filename="notes.txt"
        )
        == []
    )
    assert await keys(service) == ["keep.txt"]


async def test_delete_of_a_missing_artifact_is_a_no_op(service: InMemoryArtifactService) -> None:
    await service.delete_artifact(app_name=APP, user_id=USER, session_id="s1", filename="none")

    assert await keys(service) == []


@pytest.mark.parametrize(
    "part",
    [types.Part(), types.Part(function_call=types.FunctionCall(name="f"))],
    ids=["empty", "function-call"],
)
async def test_part_without_data_is_rejected(
    service: InMemoryArtifactService, part: types.Part
) -> None:
    with pytest.raises(ValueError, match="inline_data or text"):
        await save(service, "bad.bin", part)

    assert await keys(service) == []


async def test_saved_version_is_unaffected_by_later_changes_to_the_callers_part(
    service: InMemoryArtifactService,
) -> None:
    part = text("draft 1")
    await save(service, "notes.txt", part)

    part.text = "draft 2"

    assert await load(service, "notes.txt", version=0) == text("draft 1")


async def test_changing_a_loaded_part_does_not_change_the_stored_version(
    service: InMemoryArtifactService,
) -> None:
    await save(service, "notes.txt", text("original"))
    loaded = await load(service, "notes.txt")
    assert loaded is not None

    loaded.text = "scribbled"

    assert await load(service, "notes.txt") == text("original")


async def test_every_listed_key_can_be_loaded_from_that_session(
    service: InMemoryArtifactService,
) -> None:
    await service.save_artifact(
        app_name=APP, user_id=USER, session_id=None, filename="orphan.txt", artifact=text("x")
    )
    await save(service, "mine.txt", text("y"), session_id="s1")

    for name in await keys(service, session_id="s1"):
        assert await load(service, name, session_id="s1") is not None, name

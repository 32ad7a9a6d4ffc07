"""State (the merged view with a pending delta) and split_state (scopes by prefix)."""

from __future__ import annotations

import pytest

from app.sessions import State
from app.sessions.state import split_state


def test_get_returns_stored_value_or_default() -> None:
    state = State({"city": "Oslo"}, {})

    assert state["city"] == "Oslo"
    assert state.get("city") == "Oslo"
    assert state.get("missing") is None
    assert state.get("missing", "fallback") == "fallback"


def test_missing_key_raises_key_error() -> None:
    with pytest.raises(KeyError):
        State({}, {})["missing"]


def test_set_is_readable_at_once_and_recorded_in_the_delta() -> None:
    value: dict[str, object] = {"a": 1}
    delta: dict[str, object] = {}
    state = State(value, delta)

    state["b"] = 2
    state["a"] = 10

    assert state["b"] == 2
    assert state["a"] == 10
    assert delta == {"b": 2, "a": 10}
    assert state.has_delta()


def test_fresh_state_has_no_delta() -> None:
    assert not State({"a": 1}, {}).has_delta()


def test_pending_delta_wins_over_stored_value() -> None:
    state = State({"a": "old"}, {"a": "new"})

    assert state["a"] == "new"
    assert state.to_dict() == {"a": "new"}


def test_contains_sees_stored_and_pending_keys() -> None:
    state = State({"stored": 1}, {"pending": 2})

    assert "stored" in state
    assert "pending" in state
    assert "absent" not in state


def test_update_and_setdefault_go_through_the_delta() -> None:
    delta: dict[str, object] = {}
    state = State({"kept": 1}, delta)

    state.update({"x": 1, "user:y": 2})
    assert state.setdefault("kept", 99) == 1
    assert state.setdefault("z", 3) == 3

    assert delta == {"x": 1, "user:y": 2, "z": 3}


def test_iteration_and_len_cover_the_merged_keys() -> None:
    state = State({"a": 1, "b": 2}, {"b": 3, "c": 4})

    assert sorted(state) == ["a", "b", "c"]
    assert len(state) == 3


def test_split_state_routes_keys_by_prefix_and_drops_temp() -> None:
    app, user, session = split_state(
        {
            "app:theme": "dark",
            "user:name": "Ada",
            "topic": "weather",
            "temp:scratch": "gone",
        }
    )

    assert app == {"app:theme": "dark"}
    assert user == {"user:name": "Ada"}
    assert session == {"topic": "weather"}


def test_split_state_only_treats_leading_prefixes_as_scopes() -> None:
    app, user, session = split_state({"my_app:x": 1, "not_user:y": 2, "appx": 3})

    assert app == {}
    assert user == {}
    assert session == {"my_app:x": 1, "not_user:y": 2, "appx": 3}

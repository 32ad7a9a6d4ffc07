"""The server package's public names."""

from __future__ import annotations

import app.server


def test_server_exports() -> None:
    assert sorted(app.server.__all__) == ["Settings", "create_app", "load_settings"]
    assert callable(app.server.create_app)

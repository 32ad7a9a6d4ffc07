"""The ADK dev UI: fetching its bundle into a cache (`devui fetch`) and serving it at /dev-ui/."""

from __future__ import annotations

from app.server.dev_ui.bundle import (
    PINNED_VERSION,
    DevUiFetchError,
    bundle_dir,
    default_cache_root,
    fetch_bundle,
    is_bundle,
)

__all__ = [
    "PINNED_VERSION",
    "DevUiFetchError",
    "bundle_dir",
    "default_cache_root",
    "fetch_bundle",
    "is_bundle",
]

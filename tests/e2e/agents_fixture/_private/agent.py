"""Folders starting with `_` are not apps; this must never be imported."""

raise RuntimeError("the loader imported a private folder")

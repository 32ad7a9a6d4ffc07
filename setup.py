"""Packaging beyond pyproject.toml: ship the repository's `migrations/` inside the wheel.

The alembic folder stays at the repository root (see ARCHITECTURE.md); installed from a
wheel it is the package `app._migrations`, where `app.sessions.migration` looks for it.
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["app", "app.*"]),
        "app._migrations",
        "app._migrations.versions",
    ],
    package_dir={"app._migrations": "migrations"},
    package_data={"app": ["py.typed"], "app._migrations": ["script.py.mako"]},
)

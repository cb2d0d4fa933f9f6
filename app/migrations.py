"""Alembic, driven from code so `outreach db upgrade`, tests and the demo migrate the same way."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from app.config import ROOT
from app.db import _normalise_url


def alembic_config(database_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", _normalise_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)

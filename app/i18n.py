"""System strings in the patient's language, from the Babel catalogs under ``locales/``.

Why compile ``.po`` in memory when no ``.mo`` exists: a fresh checkout, a test run and a worker must
all speak Spanish without depending on a build step having run first; ``make`` still builds ``.mo``.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from app.config import LOCALES_DIR

SUPPORTED_LANGUAGES: tuple[str, ...] = ("en", "es")
DEFAULT_LANGUAGE = "en"

Gettext = Callable[[str], str]


def normalise_language(tag: str | None) -> str:
    """Map a BCP 47 tag (``es-MX``, ``ES``) to a supported language, defaulting to English."""
    if not tag:
        return DEFAULT_LANGUAGE
    base = tag.replace("_", "-").split("-")[0].strip().lower()
    return base if base in SUPPORTED_LANGUAGES else DEFAULT_LANGUAGE


@functools.lru_cache(maxsize=16)
def translations(language: str) -> NullTranslations:
    lang = normalise_language(language)
    directory = LOCALES_DIR / lang / "LC_MESSAGES"
    mo = directory / "messages.mo"
    po = directory / "messages.po"
    if po.exists() and (not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime):
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=lang)
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        return Translations(fp=buffer)
    if mo.exists():
        with mo.open("rb") as fh:
            return Translations(fp=fh)
    return NullTranslations()


def gettext_for(language: str) -> Gettext:
    return translations(normalise_language(language)).gettext


def locale_for(language: str) -> Locale:
    try:
        return Locale.parse(normalise_language(language))
    except UnknownLocaleError:
        return Locale.parse(DEFAULT_LANGUAGE)

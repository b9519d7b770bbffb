"""The one language table: codes (ISO 639-1 as XTREME names them, ISO 639-3, FLORES-200
``lang_Script``), name, family, script and XLM-R pretraining size (CC-100 GiB).

Data: ``resources/languages.tsv`` (one row per language variety, every FLORES-200 code plus
the XLM-R languages FLORES lacks). Resolution order of :func:`lookup`: the row's ``code``,
its FLORES code, ISO 639-1, ISO 639-3 (the first row of a shared 639-3 code wins, e.g.
``zho`` -> ``zho_Hans``), an alias (Tatoeba ``cmn``, macro-language and bibliographic codes),
then ``xx_Script`` / ``xx-Script`` with any of the above for ``xx``. Case is ignored.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING

from mmxfer.errors import UnknownNameError, suggest

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

# pandas is imported in the functions that return frames: the language table loads without it

RESOURCE_LEVELS: tuple[str, ...] = ("high", "mid", "low", "unseen")
ENGLISH_CODES = frozenset({"en", "eng", "eng_latn"})  # English as the tasks name it, lower-cased


def is_english(code: str) -> bool:
    """True for English as the tasks name it (``en``, ``eng``, ``eng_Latn``); case is ignored."""
    return str(code).lower() in ENGLISH_CODES


@dataclass(frozen=True)
class Language:
    code: str  # canonical: the FLORES-200 code, or ISO 639-3 for languages outside FLORES-200
    iso639_1: str | None
    iso639_3: str
    flores: str | None
    name: str
    family: str  # top-level family (Indo-European, Niger-Congo, ...)
    genus: str  # sub-family (Germanic, Bantu, ...)
    script: str  # ISO 15924 code (Latn, Arab, ...)
    script_name: str
    xlmr_gb: float | None  # CC-100 GiB in the XLM-R paper; None = not one of XLM-R's 100
    resource: str  # high (>= 10 GiB) | mid (>= 1) | low (< 1) | unseen
    aliases: tuple[str, ...] = ()

    @property
    def in_xlmr(self) -> bool:
        return self.xlmr_gb is not None


def _read() -> list[Language]:
    text = resources.files("mmxfer").joinpath("resources/languages.tsv").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    out = []
    for row in csv.DictReader(lines, delimiter="\t"):
        out.append(
            Language(
                code=row["code"],
                iso639_1=row["iso639_1"] or None,
                iso639_3=row["iso639_3"],
                flores=row["flores"] or None,
                name=row["name"],
                family=row["family"],
                genus=row["genus"],
                script=row["script"],
                script_name=row["script_name"],
                xlmr_gb=float(row["xlmr_gb"]) if row["xlmr_gb"] else None,
                resource=row["resource"],
                aliases=tuple(a for a in row["aliases"].split(";") if a),
            )
        )
    return out


@lru_cache(maxsize=1)
def _languages() -> tuple[Language, ...]:
    return tuple(_read())


@lru_cache(maxsize=1)
def _index() -> dict[str, Language]:
    index: dict[str, Language] = {}
    # later passes never overwrite earlier ones: code/flores beat ISO codes beat aliases
    for attr in ("code", "flores", "iso639_1", "iso639_3"):
        for lang in _languages():
            key = getattr(lang, attr)
            if key:
                index.setdefault(key.lower(), lang)
    for lang in _languages():
        for alias in lang.aliases:
            index.setdefault(alias.lower(), lang)
    return index


def languages() -> tuple[Language, ...]:
    """Every row of the table."""
    return _languages()


def lookup(code: str) -> Language:
    """The language for any known code; unknown -> :class:`UnknownNameError` with suggestions."""
    key = str(code).strip().lower().replace("-", "_")
    index = _index()
    if key in index:
        return index[key]
    if key.replace("_", "-") in index:
        return index[key.replace("_", "-")]
    base, sep, script = key.partition("_")
    if sep and base in index:
        stem = index[base]
        for lang in _languages():
            if lang.iso639_3 == stem.iso639_3 and lang.script.lower() == script:
                return lang
    raise UnknownNameError(f"unknown language code {code!r}{suggest(str(code), _all_codes())}")


def _all_codes() -> list[str]:
    return sorted({k for k in _index()})


def to_flores(code: str) -> str:
    """The FLORES-200 code (``de`` -> ``deu_Latn``); error if the language is not in FLORES-200."""
    lang = lookup(code)
    if lang.flores is None:
        raise UnknownNameError(f"language {code!r} ({lang.name}) is not in FLORES-200")
    return lang.flores


def to_iso1(code: str) -> str:
    """The two-letter code as XTREME names it (``deu_Latn`` -> ``de``); error if it has none."""
    lang = lookup(code)
    if lang.iso639_1 is None:
        raise UnknownNameError(f"language {code!r} ({lang.name}) has no ISO 639-1 code")
    return lang.iso639_1


def flores200_codes() -> tuple[str, ...]:
    """All 204 FLORES-200 codes, in table order."""
    return tuple(lang.flores for lang in _languages() if lang.flores)


def table() -> pd.DataFrame:
    """The whole table as a DataFrame (one row per language variety)."""
    import pandas as pd

    rows = [{**lang.__dict__, "aliases": ";".join(lang.aliases)} for lang in _languages()]
    return pd.DataFrame(rows)


def metadata(codes: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """Table rows for ``codes`` (as given, one row each), unknown codes get empty metadata."""
    import pandas as pd

    rows = []
    for code in codes:
        try:
            lang = lookup(code)
            rows.append(
                {
                    "lang": code,
                    "lang_name": lang.name,
                    "family": lang.family,
                    "genus": lang.genus,
                    "script": lang.script,
                    "xlmr_gb": lang.xlmr_gb,
                    "resource": lang.resource,
                }
            )
        except UnknownNameError:
            rows.append(
                {
                    "lang": code,
                    "lang_name": code,
                    "family": "unknown",
                    "genus": "unknown",
                    "script": "unknown",
                    "xlmr_gb": None,
                    "resource": "unseen",
                }
            )
    return pd.DataFrame(rows)

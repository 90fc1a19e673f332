"""Untrusted inline text made inert for GitHub markdown (no imports beyond `re`: report and web use it)."""

from __future__ import annotations

import re

_MD_ESCAPE = re.compile(r"([\\`|\[\]])")
_URL_SCHEME = re.compile(r"(?i)\b(https?|ftp)(?=:)")
_WWW = re.compile(r"(?i)\b(www)(?=\.)")


def inert(text: str) -> str:
    """Untrusted inline text (a fork commit's title, a paper's title) rendered by GitHub as exactly these
    characters: never a link, an image, raw HTML, code or a table cell break.

    The one helper for every place that renders such titles (report tables and headings, the dossier, quoted
    hypotheses). Markdown punctuation is backslash-escaped (`[`, `]`, `` ` ``, `|`, `\\`), `<` becomes an
    entity, and bare URLs get a zero-width space (U+200B) after the scheme (`http`, `https`, `ftp`) or `www`,
    so that GitHub's autolinker leaves them as text. What a reader sees is unchanged."""
    s = _MD_ESCAPE.sub(r"\\\1", text).replace("<", "&lt;")
    return _WWW.sub("\\1\u200b", _URL_SCHEME.sub("\\1\u200b", s))

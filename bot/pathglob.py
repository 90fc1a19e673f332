"""The bot's import of sky/pathglob.py, the one path-glob matcher (rules: that file's doc). The VM driver
imports the same file, so the agent's write checks, the push check and research match paths exactly as the
driver's protected-path restore does."""

from __future__ import annotations

from bot.resources import sky_module

_shared = sky_module("pathglob")
match = _shared.match
protected = _shared.protected
normalize = _shared.normalize

__all__ = ["match", "normalize", "protected"]

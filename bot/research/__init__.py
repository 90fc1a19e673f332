"""Research stage: arXiv, forks and related projects, other backends, upstream's open work -> cited dossier."""
from .dossier import Dossier, ResearchOptions, build_dossier
from .model import Hypothesis, Source, SourceNote
from .sanitize import sanitize

__all__ = ["Dossier", "Hypothesis", "ResearchOptions", "Source", "SourceNote", "build_dossier", "sanitize"]

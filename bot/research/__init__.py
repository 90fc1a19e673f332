"""Research stage: arXiv, forks and related projects, other backends, upstream's open work -> cited
dossier."""

from .dossier import Dossier, ResearchOptions, build_dossier
from .model import Hypothesis, Source, SourceNote

__all__ = ["Dossier", "Hypothesis", "ResearchOptions", "Source", "SourceNote", "build_dossier"]

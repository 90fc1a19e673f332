"""autoresearch-bot: research-driven performance work for GitHub repositories."""

__version__ = "0.1.0"

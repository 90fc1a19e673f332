"""WSGI entry point for production servers (gunicorn bot.wsgi:app). Settings come from the environment."""

from .config import Settings
from .store import Store
from .web import create_app

settings = Settings.load()
app = create_app(settings, Store(settings.db_path))

"""Packaging: the bot's code plus the repository's sky/ and prompts/ folders (and the GitHub App manifest
in deploy/) as package data.

The folders stay where they are in the repository; the wheel carries them as bot/_data/sky,
bot/_data/prompts and bot/_data/deploy/app-manifest.json (never as a top-level `sky`, which is SkyPilot's
package). bot/resources.py finds them.
Everything else is declared in pyproject.toml.
"""

from setuptools import find_packages, setup

DATA = {"bot._data.sky": "sky", "bot._data.prompts": "prompts", "bot._data.deploy": "deploy"}

setup(
    packages=find_packages(include=["bot", "bot.*"]) + list(DATA),
    package_dir=DATA,
    package_data={
        "bot": ["py.typed", "templates/*.html"],  # the status pages' Jinja2 templates (bot/web.py)
        "bot._data.sky": ["*.yaml"],
        "bot._data.prompts": ["*.md"],
        "bot._data.deploy": ["app-manifest.json", "gunicorn.conf.py"],  # serve runs gunicorn with it
    },
)

"""`autoresearch-bot serve`: the webhook service under gunicorn, the production WSGI server that deploy/ runs
(`gunicorn -c deploy/gunicorn.conf.py bot.wsgi:app`), with the same settings file, so the command README's
deployment names is the server a deployment gets: gthread workers, the per-request body limits of
gunicorn.conf.py, no development-server banner. Unless `--no-worker`, the bot's worker runs in the one web
process (started after gunicorn forks it, stopped at a safe point when gunicorn stops it); with
`--no-worker`, gunicorn.conf.py's process count applies and `autoresearch-bot worker` runs elsewhere.

gunicorn is the `serve` extra (pip install 'autoresearch-bot[serve]'); without it `serve` says so and stops.
"""

from __future__ import annotations

import logging
import runpy
from pathlib import Path
from typing import Any

from .config import ConfigError, Settings

log = logging.getLogger("autoresearch")


def gunicorn_conf() -> Path:
    """deploy/gunicorn.conf.py: the checkout's, or the wheel's copy (bot/_data/deploy/)."""
    from .resources import data_dir

    return data_dir("deploy") / "gunicorn.conf.py"


def serve(config: str | None, host: str, port: int, *, worker: bool) -> int:
    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:
        print(
            "serve runs gunicorn, which is not installed: pip install 'autoresearch-bot[serve]' "
            "(the Docker image and deploy/ have it)"
        )
        return 2
    settings = Settings.load(config)  # a ConfigError here: exit 2 before anything starts
    if worker:
        from .app import make_forge

        make_forge(settings)  # credentials checked now, not in the forked process
    conf = runpy.run_path(str(gunicorn_conf()))

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in conf.items():
                if key in self.cfg.settings and value is not None:
                    self.cfg.set(key, value)
            self.cfg.set("bind", [f"{host}:{port}"])
            if "control_socket_disable" in self.cfg.settings:  # gunicorn >= 25: no admin socket in $HOME
                self.cfg.set("control_socket_disable", True)
            if worker:  # one process: the bot's worker and the web service share it
                self.cfg.set("workers", 1)
                # the worker's threads get up to 30 s to reach a safe point (Worker.stop's join)
                self.cfg.set("graceful_timeout", max(int(conf.get("graceful_timeout") or 0), 35))
                then = conf.get("worker_exit")

                def worker_exit(server: Any, gworker: Any) -> None:
                    _stop_worker()
                    if callable(then):
                        then(server, gworker)

                self.cfg.set("worker_exit", worker_exit)

        def load(self) -> Any:  # in the forked web process
            return _web_app(config, worker)

    log.info(
        "listening on http://%s:%s (gunicorn, %s)", host, port, "with the worker" if worker else "web only"
    )
    try:
        Server().run()
    except SystemExit as exc:  # gunicorn exits with its reason (a worker that failed to boot: 3)
        return int(exc.code or 0)
    return 0


_BOT: dict[str, Any] = {}


def _web_app(config: str | None, worker: bool) -> Any:
    settings = Settings.load(config)
    if not worker:
        from .store import Store
        from .web import create_app

        return create_app(settings, Store(settings.db_path))
    from .app import build_bot

    try:
        bot = build_bot(settings)
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        raise
    executor = bot.pipeline.services.get("executor")
    if executor is not None and executor.capabilities.reconciler:  # as `worker` does (cli.start_reconciler)
        executor.start_reconciler(300.0)
    bot.worker.start()
    _BOT["bot"] = bot
    return bot.app


def _stop_worker() -> None:
    """gunicorn stops the web process: the bot's worker stops at a safe point (its runs resume later)."""
    bot = _BOT.pop("bot", None)
    if bot is not None:
        log.info("stopping the worker at a safe point")
        bot.worker.stop()

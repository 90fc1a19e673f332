"""Command line: `autoresearch-bot serve | worker | sandbox | demo | bench | status | doctor | config
validate | config schema | app create` (also `python -m bot`)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

from .config import ConfigError, Settings


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.load(getattr(args, "config", None))


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve import serve

    return serve(getattr(args, "config", None), args.host, args.port, worker=not args.no_worker)


def stop_on_sigterm(worker: Any) -> None:
    """SIGTERM (docker stop, systemctl stop) stops the worker at a safe point instead of killing it mid-write:
    its threads finish their step, runs stay recorded and leased work is resumed by the next start."""
    import signal
    import threading

    def handler(signum: int, frame: Any) -> None:
        logging.getLogger("autoresearch").info("SIGTERM: stopping the worker at a safe point")
        threading.Thread(target=worker.stop, name="autoresearch-sigterm", daemon=True).start()

    signal.signal(signal.SIGTERM, handler)


def start_reconciler(bot: Any) -> None:
    """The SkyPilot executor's reconciler (pending teardowns, orphaned clusters): now and every 5 minutes,
    in the process that runs the worker only (never in web processes)."""
    executor = bot.pipeline.services.get("executor")
    if executor is not None and executor.capabilities.reconciler:
        executor.start_reconciler(300.0)


def cmd_worker(args: argparse.Namespace) -> int:
    from .app import build_bot

    bot = build_bot(_settings(args))
    stop_on_sigterm(bot.worker)
    start_reconciler(bot)
    if args.once:
        bot.worker.drain(timeout=args.timeout)
    else:
        bot.worker.run_forever()
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import run_doctor

    for noisy in ("alembic", "sky"):  # SkyPilot's imports log at INFO; the report is what counts here
        logging.getLogger(noisy).setLevel(logging.WARNING)
    code, lines = run_doctor(getattr(args, "config", None))
    print("\n".join(lines))
    return code


def cmd_config_validate(args: argparse.Namespace) -> int:
    from .doctor import validate_project_file

    code, line = validate_project_file(args.file, getattr(args, "config", None))
    print(line, file=sys.stdout if code == 0 else sys.stderr)
    return code


def cmd_config_schema(args: argparse.Namespace) -> int:
    from .configschema import project_schema

    text = json.dumps(project_schema(), indent=2) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_app_create(args: argparse.Namespace) -> int:
    from .appsetup import run_app_create

    return run_app_create(args)


def cmd_status(args: argparse.Namespace) -> int:
    from .store import Store

    settings = _settings(args)
    store = Store(settings.db_path)
    runs = store.list_runs(args.limit)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": r.id,
                        "repo": r.repo,
                        "issue": r.issue_number,
                        "kind": r.kind,
                        "state": r.state,
                        "attempt": r.attempt,
                        "error": r.error,
                    }
                    for r in runs
                ],
                indent=2,
            )
        )
        return 0
    if not runs:
        print("no runs yet")
    for r in runs:
        print(
            f"run {r.id:>4}  {r.repo}#{r.issue_number:<5} {r.kind:<8} attempt {r.attempt}  {r.state:<13}"
            f" {r.error or ''}"
        )
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from .sandbox.server import serve

    serve(args.host, args.port, Path(args.data_dir))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(Path(args.workdir), llama=args.llama, keep_serving=args.serve)


def cmd_bench(args: argparse.Namespace) -> int:
    from .benchcli import run_bench

    return run_bench(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autoresearch-bot",
        description=(
            "Research-driven performance bot for GitHub: research, candidate patches, A/B benchmarks on "
            "SkyPilot VMs (or locally), statistics, draft PRs."
        ),
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "serve",
        help="run the webhook service under gunicorn, deploy/gunicorn.conf.py's settings (and the worker, "
        "unless --no-worker)",
    )
    p.add_argument(
        "--config", help="settings YAML (default: $AUTORESEARCH_CONFIG; env AUTORESEARCH_* override)"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--no-worker", action="store_true", help="only accept webhooks; run `worker` separately")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("worker", help="run the background worker that drives runs")
    p.add_argument("--config")
    p.add_argument("--once", action="store_true", help="process what is pending, then exit")
    p.add_argument("--timeout", type=float, default=3600.0)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser(
        "doctor",
        help="check settings, credentials, shipped files, each architecture's SkyPilot "
        "task and price; one fix per problem, exit 1 if any",
    )
    p.add_argument("--config")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("config", help="project config tools")
    csub = p.add_subparsers(dest="config_command", required=True)
    v = csub.add_parser(
        "validate",
        help="validate a .autoresearch.yml as the bot would read it: every problem, with its line",
    )
    v.add_argument("file", nargs="?", default=None, help="default: ./.autoresearch.yml")
    v.add_argument("--config", help="bot settings (to check the architectures against)")
    v.set_defaults(func=cmd_config_validate)
    v = csub.add_parser(
        "schema",
        help="print the JSON Schema of .autoresearch.yml (shipped as docs/autoresearch.schema.json)",
    )
    v.add_argument("--out", help="write it to this file instead of stdout")
    v.set_defaults(func=cmd_config_schema)

    p = sub.add_parser("app", help="GitHub App tools")
    asub = p.add_subparsers(dest="app_command", required=True)
    a = asub.add_parser(
        "create",
        help="register the bot's GitHub App from deploy/app-manifest.json (GitHub's manifest flow) and "
        "write its key (0600) and an env file with its id, key path and webhook secret",
    )
    a.add_argument("--github-url", default="https://github.com", help="GitHub's web URL (GHES: https://host)")
    a.add_argument("--org", help="create the App for this organization (default: your account)")
    a.add_argument("--out", default=".", help="folder for app.pem, .env and app.json (default: .)")
    a.add_argument(
        "--env-file", help="the env file to write (default: <out>/.env; systemd: /etc/autoresearch/env)"
    )
    a.add_argument(
        "--key-file-as",
        help="the key's path as the bot sees it, written to the env file (compose: /run/secrets/app.pem)",
    )
    a.add_argument(
        "--webhook-url", help="the bot's public webhook URL (default: $AUTORESEARCH_PUBLIC_URL/webhook)"
    )
    a.add_argument("--name", help="the App's name (unique on the GitHub; default: the manifest's)")
    a.add_argument("--manifest", help="the manifest file (default: the shipped deploy/app-manifest.json)")
    a.add_argument("--port", type=int, default=0, help="the local redirect listener's port (default: any)")
    a.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the redirect")
    a.add_argument("--code", help="finish a flow whose redirect did not reach the listener (the ?code=...)")
    a.add_argument("--force", action="store_true", help="overwrite an existing <out>/app.pem")
    a.add_argument("--config", help="bot settings (for public_url)")
    a.set_defaults(func=cmd_app_create)

    p = sub.add_parser("status", help="list runs and their state")
    p.add_argument("--config")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("sandbox", help="run the local GitHub-compatible sandbox server")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--data-dir", default="var/sandbox")
    p.set_defaults(func=cmd_sandbox)

    p = sub.add_parser(
        "demo", help="the whole product offline: sandbox GitHub, bot, example project, real benchmarks"
    )
    p.add_argument("--workdir", default="var/demo", help="where the demo keeps its state (default var/demo)")
    p.add_argument(
        "--llama",
        action="store_true",
        help="use real llama.cpp (llama-cpp-python sdist, preset llama.cpp) "
        "instead of the small example project (slower: minutes)",
    )
    p.add_argument(
        "--serve", action="store_true", help="keep the sandbox and bot running afterwards to browse"
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "bench", help="measure candidate commits against a baseline locally (same driver as VMs)"
    )
    p.add_argument("--repo", default=".", help="local git repository")
    p.add_argument("--baseline", required=True, help="baseline commit or branch")
    p.add_argument(
        "--candidate", action="append", required=True, help="candidate commit or branch (repeatable)"
    )
    p.add_argument(
        "--config-file", default=None, help="project config (default: .autoresearch.yml at baseline)"
    )
    p.add_argument("--arch", default="local")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--workdir", default="var/bench")
    p.set_defaults(func=cmd_bench)
    return parser


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # colour and cursor codes (werkzeug colours request lines)


class PlainFormatter(logging.Formatter):
    """Log lines without ANSI colour codes, for a stream that is not a terminal (a file, journald, docker
    logs); on a terminal they are left as the library wrote them, unless NO_COLOR is set."""

    def __init__(self, fmt: str, stream: Any):
        super().__init__(fmt)
        tty = bool(getattr(stream, "isatty", lambda: False)())
        self.plain = not tty or bool(os.environ.get("NO_COLOR"))

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return ANSI.sub("", text) if self.plain else text


def configure_logging(level: int = logging.INFO, stream: Any = None) -> None:
    """The root logger: one line per record to stderr (or `stream`), plain off a terminal."""
    stream = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(stream)
    handler.setFormatter(PlainFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", stream))
    logging.basicConfig(level=level, handlers=[handler])  # a no-op where the root has handlers already


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(getattr(logging, str(args.log_level).upper(), logging.INFO))
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

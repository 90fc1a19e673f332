"""python -m bot.sandbox [--host H] [--port P] [--data-dir D] [--allow-token-checks]"""

from __future__ import annotations

import argparse

from bot.sandbox.server import serve


def main() -> None:
    parser = argparse.ArgumentParser(description="Local GitHub-compatible sandbox server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--data-dir", default="var/sandbox")
    parser.add_argument(
        "--allow-token-checks",
        action="store_true",
        help="let personal tokens create check runs (GitHub requires a GitHub App)",
    )
    args = parser.parse_args()
    serve(args.host, args.port, args.data_dir, checks_require_app=not args.allow_token_checks)


if __name__ == "__main__":
    main()

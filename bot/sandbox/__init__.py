"""Local GitHub-compatible server (REST subset, git smart HTTP, signed webhooks) for the demo and tests."""

from bot.sandbox.server import Sandbox, create_app, serve
from bot.sandbox.state import ApiError, SandboxState

__all__ = ["Sandbox", "SandboxState", "ApiError", "create_app", "serve"]

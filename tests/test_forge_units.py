"""Offline checks of bot.forge: redaction, configuration, error translation (no server needed)."""

from __future__ import annotations

import pytest
from github import GithubException
from github.GithubException import RateLimitExceededExceedsMaxWait

from bot import forge
from bot.forge import (
    AppAuth,
    GitHubForge,
    NotFound,
    PermissionDenied,
    RateLimited,
    TokenAuth,
    Unprocessable,
    forge_from_settings,
    redact,
    split_repo,
)

TOKEN = "ghp_" + "A1b2C3d4" * 5


def test_redact_masks_known_secrets_and_token_shapes() -> None:
    text = (
        f"push https://x-access-token:{TOKEN}@github.com/o/r.git failed; "
        "jwt eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxMjMifQ.c2lnbmF0dXJlc2lnbmF0dXJl "
        "custom s3cr3t-value Authorization: token abcdef123456"
    )
    out = redact(text, ["s3cr3t-value"])
    assert TOKEN not in out
    assert "eyJhbGci" not in out
    assert "s3cr3t-value" not in out
    assert "abcdef123456" not in out
    assert "https://***@github.com/o/r.git" in out


def test_redact_keeps_plain_text() -> None:
    text = "benchmark softmax_ns improved by 3.1% on x86 (see https://github.com/o/r/pull/4)"
    assert redact(text) == text


def test_forge_redact_knows_its_token() -> None:
    odd = "sandbox-token-without-prefix-1234"
    f = GitHubForge(TokenAuth(odd), base_url="http://127.0.0.1:9/api/v3")
    assert odd not in f.redact(f"token is {odd}")
    assert "***" in repr(TokenAuth(odd)) and odd not in repr(TokenAuth(odd))


def test_github_forge_implements_the_forge_protocol() -> None:
    f = GitHubForge(TokenAuth(TOKEN), base_url="http://127.0.0.1:9/api/v3")
    assert isinstance(f, forge.Forge)
    missing = [name for name in dir(forge.Forge) if not name.startswith("_") and not hasattr(f, name)]
    assert missing == []


def test_split_repo_rejects_bad_names() -> None:
    assert split_repo("ggml-org/llama.cpp") == ("ggml-org", "llama.cpp")
    for bad in ["llama.cpp", "a/b/c", "/b", "a/", "a b/c"]:
        with pytest.raises(ValueError):
            split_repo(bad)


def test_forge_from_settings_requires_credentials(tmp_path) -> None:
    with pytest.raises(ValueError, match="token or app_id"):
        forge_from_settings(base_url="http://127.0.0.1:9/api/v3")
    with pytest.raises(ValueError, match="private_key"):
        forge_from_settings(app_id=12)
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n")
    f = forge_from_settings(
        base_url="https://ghe.example/api/v3/",
        app_id=12,
        private_key_path=str(key),
        retries=2,
        timeout=3,
        max_wait_s=5,
    )
    assert isinstance(f.auth, AppAuth) and f.auth.app_id == 12
    assert f.base_url == "https://ghe.example/api/v3"
    assert f.retry.total == 2 and f.retry.max_wait_s == 5
    assert "BEGIN PRIVATE KEY" not in repr(f.auth)
    t = forge_from_settings(token=TOKEN)
    assert isinstance(t.auth, TokenAuth) and t.base_url == forge.DEFAULT_BASE_URL
    assert (t.min_interval_s, t.min_write_interval_s) == (0.25, 1.0)  # GitHub's advice for writes
    local = forge_from_settings(base_url="http://127.0.0.1:8765/api/v3", token=TOKEN)
    assert (local.min_interval_s, local.min_write_interval_s) == (0.0, 0.0)


def test_make_retry_caps_rate_limit_waits() -> None:
    r = forge.make_retry(forge.RetryPolicy(total=3, max_wait_s=2, secondary_rate_wait_s=60))
    assert r.total == 3
    assert r.max_rate_limit_wait == 2
    assert r.secondary_rate_wait == 2  # never longer than the cap
    assert 429 in r.status_forcelist and 502 in r.status_forcelist and 403 in r.status_forcelist


@pytest.mark.parametrize(
    "exc, kind, status",
    [
        (GithubException(404, {"message": "Not Found"}), NotFound, 404),
        (GithubException(401, {"message": "Bad credentials"}), PermissionDenied, 401),
        (GithubException(403, {"message": "Must have push access"}), PermissionDenied, 403),
        (GithubException(403, {"message": "API rate limit exceeded for user"}), RateLimited, 403),
        (GithubException(429, {"message": "slow down"}), RateLimited, 429),
        (
            RateLimitExceededExceedsMaxWait(403, {"message": "secondary rate limit"}, wait=99.0),
            RateLimited,
            403,
        ),
        (
            GithubException(422, {"message": "Validation Failed", "errors": [{"message": "exists"}]}),
            Unprocessable,
            422,
        ),
        (GithubException(500, {"message": f"boom {TOKEN}"}), forge.ForgeError, 500),
    ],
)
def test_error_translation(exc: GithubException, kind: type, status: int) -> None:
    f = GitHubForge(TokenAuth(TOKEN), base_url="http://127.0.0.1:9/api/v3")
    err = f._error(exc)
    assert type(err) is kind
    assert err.status == status
    assert TOKEN not in str(err)
    if isinstance(err, RateLimited) and isinstance(exc, RateLimitExceededExceedsMaxWait):
        assert err.wait_s == 99.0


def test_connection_failure_is_a_forge_error_without_token() -> None:
    # Nothing listens on port 9 (discard) on this machine: a real connection refusal.
    f = GitHubForge(
        TokenAuth(TOKEN),
        base_url="http://127.0.0.1:9/api/v3",
        retry=forge.RetryPolicy(total=1, backoff_factor=0.01, connection_attempts=2),
        min_interval_s=0,
    )
    with pytest.raises(forge.ForgeError) as info:
        f.default_branch("o/r")
    assert info.value.status == 0
    assert TOKEN not in str(info.value)

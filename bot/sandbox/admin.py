"""Admin API under /_sandbox (no GitHub equivalent): set up users, repos, apps, hooks, faults; inspect
logs."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from bot.sandbox.render import Renderer
from bot.sandbox.state import ApiError, SandboxState, now_iso


def make_admin(
    state: SandboxState,
    faults: list[dict[str, Any]],
    request_log: list[dict[str, Any]],
    fire_installation: Any,
) -> Blueprint:
    bp = Blueprint("admin", __name__, url_prefix="/_sandbox")

    def body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        return data if isinstance(data, dict) else {}

    def need(data: dict[str, Any], *keys: str) -> None:
        missing = [k for k in keys if not data.get(k)]
        if missing:
            raise ApiError(422, f"missing field(s): {', '.join(missing)}")

    def r() -> Renderer:
        return Renderer(request.host_url, state)

    @bp.post("/users")
    def create_user() -> Any:
        data = body()
        need(data, "login")
        with state.lock:
            user, token = state.create_user(data["login"], data.get("type", "User"), data.get("token"))
            for member in data.get("members") or []:  # an organization's members (may create repos in it)
                state.add_org_member(user.login, member)
        return jsonify({"login": user.login, "id": user.id, "type": user.type, "token": token}), 201

    @bp.post("/repos")
    def create_repo() -> Any:
        data = body()
        need(data, "owner", "name")
        with state.lock:
            repo = state.create_repo(
                data["owner"],
                data["name"],
                data.get("source_path"),
                data.get("default_branch"),
                data.get("description"),
                bool(data.get("auto_init")),
                bool(data.get("private")),
            )
            return jsonify(r().repo(repo)), 201

    @bp.post("/repos/<owner>/<name>/forks")
    def fork(owner: str, name: str) -> Any:
        data = body()
        need(data, "owner")
        with state.lock:
            fork = state.fork(state.repo(owner, name), data["owner"], data.get("name"))
            return jsonify(r().repo(fork)), 201

    @bp.put("/repos/<owner>/<name>/collaborators/<login>")
    def collaborator(owner: str, name: str, login: str) -> Any:
        data = body()
        with state.lock:
            repo = state.repo(owner, name)
            state.set_collaborator(repo, login, data.get("permission", "write"))
            return jsonify({"repo": repo.full_name, "login": login, "permission": repo.collaborators[login]})

    @bp.post("/apps")
    def register_app() -> Any:
        data = body()
        need(data, "slug", "public_key_pem")
        with state.lock:
            app = state.register_app(
                data["slug"],
                data["public_key_pem"],
                data.get("app_id"),
                data.get("name"),
                data.get("owner", "sandbox-apps"),
                data.get("permissions"),
                data.get("events"),
            )
        return jsonify({"id": app.id, "slug": app.slug, "name": app.name, "bot_login": app.bot_login}), 201

    @bp.patch("/apps/<int:app_id>")
    def update_app(app_id: int) -> Any:
        data = body()
        with state.lock:
            app = state.update_app(app_id, data.get("permissions"), data.get("events"))
        return jsonify({"id": app.id, "permissions": app.permissions, "events": app.events})

    @bp.post("/installations/<int:inst_id>/accept")
    def accept(inst_id: int) -> Any:
        with state.lock:
            inst = state.accept_permissions(inst_id)
        return jsonify({"id": inst.id, "permissions": inst.permissions})

    @bp.post("/apps/<int:app_id>/installations")
    def install(app_id: int) -> Any:
        data = body()
        need(data, "account")
        with state.lock:
            inst = state.install_app(app_id, data["account"], list(data.get("repos") or []))
            fire_installation(inst, r())
        return jsonify(
            {"id": inst.id, "app_id": inst.app_id, "account": inst.account, "repos": inst.repos}
        ), 201

    @bp.post("/hooks")
    def add_hook() -> Any:
        data = body()
        need(data, "url")
        with state.lock:
            hook = state.add_hook(data["url"], data.get("secret"), data.get("events"), data.get("app_id"))
            ping_hook: dict[str, Any] = {
                "type": "App" if hook.app_id else "Repository",
                "id": hook.id,
                "name": "web",
                "active": True,
                "events": hook.events,
                "config": {"content_type": "json", "insecure_ssl": "0", "url": hook.url},
                "created_at": now_iso(),
                "updated_at": now_iso(),
            }
            if hook.app_id:
                ping_hook["app_id"] = hook.app_id
            state.sender.ping(
                hook, {"zen": "Keep it logically awesome.", "hook_id": hook.id, "hook": ping_hook}
            )
        return jsonify({"id": hook.id, "url": hook.url, "events": hook.events, "app_id": hook.app_id}), 201

    @bp.get("/deliveries")
    def deliveries() -> Any:
        payload = request.args.get("payload") == "1"
        return jsonify([d.to_dict(with_payload=payload) for d in state.sender.deliveries()])

    @bp.post("/deliveries/<int:delivery_id>/redeliver")
    def redeliver(delivery_id: int) -> Any:
        try:
            d = state.sender.redeliver(delivery_id)
        except KeyError:
            raise ApiError(404, "Not Found") from None
        return jsonify(d.to_dict()), 202

    @bp.post("/deliveries/wait")
    def wait() -> Any:
        ok = state.sender.wait_idle(float(body().get("timeout", 10)))
        return jsonify({"idle": ok})

    @bp.route("/faults", methods=["GET", "POST", "DELETE"])
    def fault_rules() -> Any:
        if request.method == "DELETE":
            faults.clear()
            return Response(status=204)
        if request.method == "GET":
            return jsonify(faults)
        data = body()
        need(data, "path_regex", "status")
        rule = {
            "id": len(faults) + 1,
            "path_regex": data["path_regex"],
            "method": data.get("method", "*").upper(),
            "status": int(data["status"]),
            "times": int(data.get("times", 1)),
            "headers": dict(data.get("headers") or {}),
            "message": data.get("message"),
            "hits": 0,
        }
        faults.append(rule)
        return jsonify(rule), 201

    @bp.route("/rate-limits", methods=["GET", "POST", "DELETE"])
    def rate_limits() -> Any:
        """Impose a GitHub rate limit on a caller: {"login": "<slug>[bot]" (all callers when absent),
        "seconds": until the reset, "kind": "primary" (403/429 with x-ratelimit-remaining: 0 and
        x-ratelimit-reset) | "secondary" (retry-after), "status": 403 | 429}."""
        if request.method == "DELETE":
            state.rate_limits.clear()
            return Response(status=204)
        if request.method == "POST":
            data = body()
            need(data, "seconds")
            limit = state.impose_rate_limit(
                data.get("login"),
                float(data["seconds"]),
                str(data.get("kind", "primary")),
                int(data.get("status", 403)),
            )
            return jsonify(vars(limit)), 201
        return jsonify([vars(x) for x in state.rate_limits])

    @bp.route("/clock", methods=["GET", "POST"])
    def clock() -> Any:
        """The sandbox's clock (rate-limit resets follow it): POST {"advance_s": N} moves it forward."""
        if request.method == "POST":
            advance = float(body().get("advance_s", 0))
            if advance < 0:
                raise ApiError(422, "the clock only moves forward")
            state.clock_offset_s += advance
        return jsonify({"now": state.now(), "offset_s": state.clock_offset_s})

    @bp.route("/requests", methods=["GET", "DELETE"])
    def requests_log() -> Any:
        if request.method == "DELETE":
            request_log.clear()
            return Response(status=204)
        return jsonify(request_log)

    @bp.route("/settings", methods=["GET", "PUT"])
    def settings() -> Any:
        if request.method == "PUT":
            data = body()
            if "installation_token_ttl_s" in data:
                state.installation_token_ttl_s = float(data["installation_token_ttl_s"])
        return jsonify({"installation_token_ttl_s": state.installation_token_ttl_s})

    @bp.get("/state")
    def export() -> Any:
        with state.lock:
            return jsonify(
                {
                    "users": [{"login": u.login, "id": u.id, "type": u.type} for u in state.users.values()],
                    "repos": [
                        {
                            "full_name": x.full_name,
                            "parent": x.parent,
                            "default_branch": x.default_branch,
                            "path": str(x.path),
                            "collaborators": x.collaborators,
                            "issues": [
                                {
                                    "number": i.number,
                                    "title": i.title,
                                    "state": i.state,
                                    "labels": i.labels,
                                    "is_pull": i.pull is not None,
                                    "comments": len(i.comment_ids),
                                }
                                for i in x.issues.values()
                            ],
                        }
                        for x in state.repos.values()
                    ],
                    "apps": [{"id": a.id, "slug": a.slug} for a in state.apps.values()],
                    "installations": [
                        {"id": i.id, "app_id": i.app_id, "account": i.account, "repos": i.repos}
                        for i in state.installations.values()
                    ],
                    "hooks": [{"id": h.id, "url": h.url, "events": h.events} for h in state.hooks.values()],
                }
            )

    return bp

"""gunicorn settings for the webhook service: `gunicorn -c deploy/gunicorn.conf.py bot.wsgi:app`.

Slow or idle clients must not starve GitHub's deliveries (GitHub gives up after 10 s). The worker is
gunicorn's gthread with one read deadline per request (`bot.serving.DeadlineThreadWorker`): connections that
have sent nothing wait in the poller without a thread; once a request's bytes arrive, its headers and body
must all be in within `AUTORESEARCH_REQUEST_DEADLINE` (5 s) in total, however the client paces them (a
deadline per read would let a byte every few seconds hold a thread for ever). Past it the connection is
closed (headers incomplete) or answered 400 (body incomplete), and the thread is free. 2 workers x 100
threads: a webhook is answered in milliseconds and a thread waiting on a stalled client costs next to
nothing, so up to ~200 stalled clients at once never delay a delivery; more delay it by at most one
deadline per wave. On the open internet, put a buffering proxy in front as well (README, Deployment).
"""

import os

from bot.serving import request_deadline

bind = os.environ.get("AUTORESEARCH_BIND", "127.0.0.1:8000")  # loopback unless told (the container: 0.0.0.0)
worker_class = "bot.serving.DeadlineThreadWorker"
workers = int(os.environ.get("AUTORESEARCH_WEB_WORKERS", "2"))
threads = int(os.environ.get("AUTORESEARCH_WEB_THREADS", "100"))
worker_connections = 1000
timeout = 30
graceful_timeout = 10
keepalive = 5
limit_request_line = 8190
limit_request_fields = 100
REQUEST_DEADLINE = request_deadline()  # checked here too: a bad value stops the server before it starts
# gunicorn 27's admin socket would be created under $HOME, which the systemd units keep read-only
# (ProtectSystem=strict) and the image's user may not own: the bot does not use it
control_socket_disable = True

"""gunicorn settings for the webhook service: `gunicorn -c deploy/gunicorn.conf.py bot.wsgi:app`.

Slow or idle clients must not starve GitHub's deliveries (GitHub gives up after 10 s). gthread workers keep
connections that have sent nothing in the main poller (gunicorn defers them after 5 s without using a
thread); a client that sends its headers and then stalls the body would hold a thread for as long as it likes,
so every request gets a socket timeout (`AUTORESEARCH_BODY_TIMEOUT`, 5 s): the stalled read fails, the client
gets a 400 and the thread is free. 2 workers x 16 threads: a webhook is answered in milliseconds, threads are
cheap. More stalled clients than threads delay a delivery by at most that timeout. On the open internet, put
a buffering proxy in front as well (README, Deployment): it absorbs clients that trickle their headers, which
no WSGI server can bound alone.
"""

import os

bind = os.environ.get("AUTORESEARCH_BIND", "127.0.0.1:8000")  # loopback unless told (the container: 0.0.0.0)
worker_class = "gthread"
workers = int(os.environ.get("AUTORESEARCH_WEB_WORKERS", "2"))
threads = int(os.environ.get("AUTORESEARCH_WEB_THREADS", "16"))
timeout = 30
graceful_timeout = 10
keepalive = 5
limit_request_line = 8190
limit_request_fields = 100
BODY_TIMEOUT = float(os.environ.get("AUTORESEARCH_BODY_TIMEOUT", "5"))


def pre_request(worker, req):  # noqa: ARG001 (gunicorn's hook signature)
    """Bound every blocking read of this request's body (the headers are in by now)."""
    sock = getattr(getattr(req, "unreader", None), "sock", None)
    if sock is not None:
        sock.settimeout(BODY_TIMEOUT)

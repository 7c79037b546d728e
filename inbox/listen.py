"""listen: forward an endpoint's new messages to an app on this machine.

    python listen.py --server URL --token TOKEN --endpoint NAME --to http://127.0.0.1:3000/path [--name LISTENER]

Standard library only, Python 3.9 or newer: the inbox serves this very file at
/api/v1/listen.py, and `manage.py listen` runs it in a checkout. It asks the inbox's API
for the endpoint's messages after its cursor (long polling), sends each one to --to with
its original method, body, content type and provider headers (the inbox's credentials and
redacted headers never travel), prints one line per delivery, and reports the result back:
the message's page shows it as an attempt by this listener, and the server moves this
listener's cursor (token + endpoint + --name). A listener that was stopped first delivers,
in order and once, what arrived meanwhile, then goes live.

It imports nothing of the inbox (docs/architecture.md: the bottom layer). Annotations use
newer syntax only as strings (`from __future__ import annotations`), which 3.9 never evaluates.
"""

from __future__ import annotations

import argparse
import base64
import json
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

USER_AGENT = "webhook-inbox-listen/1"
# How long the server may hold a poll open; the HTTP timeout allows for it.
WAIT_SECONDS = 20
# When the server had no waiting slot free it answers at once: poll again after this.
SHORT_POLL_SECONDS = 1.0
RETRY_SECONDS = (1, 2, 5, 10)


class Stop:
    """Ctrl+C and SIGTERM stop the client between deliveries, never between a delivery and
    its report: a message forwarded but not reported would be forwarded again next time."""

    def __init__(self) -> None:
        self.requested = False
        self.busy = False

    def __call__(self, signum: int, frame: Any) -> None:
        self.requested = True
        if not self.busy:
            raise KeyboardInterrupt

    def __enter__(self) -> Stop:
        self.busy = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.busy = False
        if self.requested:
            raise KeyboardInterrupt


class ApiError(Exception):
    """The inbox answered with an error that retrying will not fix (401, 403, 404, 400)."""


class SlowDown(Exception):
    """429: the inbox asks to wait this many seconds."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"rate limited; waiting {seconds:.0f} s")
        self.seconds = seconds


def _api(
    server: str, token: str, method: str, path: str, payload: dict[str, Any] | None = None, *, timeout: float = 30
) -> dict[str, Any]:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(server.rstrip("/") + path, data=data, method=method)  # noqa: S310
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Accept", "application/json")
    request.add_header("User-Agent", USER_AGENT)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the URL the user gave
            body = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:300]
        if exc.code in (400, 401, 403, 404):
            raise ApiError(f"{exc.code}: {detail}") from None
        if exc.code == 429:
            retry_after = exc.headers.get("Retry-After") or "5"
            raise SlowDown(float(retry_after) if retry_after.isdigit() else 5.0) from None
        raise
    return json.loads(body) if body else {}


def forward(to: str, message: dict[str, Any], timeout: float = 30) -> tuple[int | None, int, str]:
    """Send one message to the local app: (status or None, duration in ms, error)."""
    body = base64.b64decode(message.get("body_base64") or "")
    url = to
    if message.get("query_string"):
        url += ("&" if "?" in to else "?") + message["query_string"]
    request = urllib.request.Request(url, data=body or None, method=message.get("method") or "POST")  # noqa: S310
    for name, value in (message.get("headers") or {}).items():
        request.add_header(name, value)
    if message.get("content_type"):
        request.add_header("Content-Type", message["content_type"])
    request.add_header("X-Webhook-Inbox-Message-Id", str(message["id"]))
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the --to URL
            response.read(65536)
            status: int | None = response.status
        error = ""
    except urllib.error.HTTPError as exc:
        status, error = exc.code, ""
    except (OSError, ValueError) as exc:
        status, error = None, str(getattr(exc, "reason", exc))[:500]
    return status, int((time.monotonic() - started) * 1000), error


def line(message: dict[str, Any], status: int | None, duration_ms: int, error: str) -> str:
    when = time.strftime("%H:%M:%S")
    what = message.get("event_type") or message.get("method") or "message"
    outcome = str(status) if status is not None else f"failed ({error})"
    return f"{when}  #{message['id']}  {what}  -> {outcome}  {duration_ms} ms"


def run(args: argparse.Namespace, out: Any = None) -> int:
    out = out or sys.stdout
    stop = Stop()
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    # The first poll does not wait: "Listening" is printed once the inbox has taken the token
    # and the endpoint, so a refusal is never preceded by it.
    listening = False
    failures = 0
    while True:
        wait = args.wait if listening else 0
        query = urllib.parse.urlencode({"endpoint": args.endpoint, "name": args.name, "wait": wait})
        try:
            page = _api(args.server, args.token, "GET", f"/api/v1/listen/?{query}", timeout=wait + 15)
            failures = 0
            if not listening:
                listening = True
                print(
                    f"Listening to {args.endpoint} on {args.server}, forwarding to {args.to} (Ctrl+C stops)", file=out
                )
                out.flush()
        except ApiError as exc:
            print(f"The inbox refused: {exc}", file=sys.stderr)
            return 2
        except SlowDown as exc:
            print(f"The inbox says: {exc}", file=sys.stderr)
            time.sleep(exc.seconds)
            continue
        except (OSError, ValueError) as exc:
            delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
            failures += 1
            print(f"Cannot reach the inbox ({getattr(exc, 'reason', exc)}); retrying in {delay} s", file=sys.stderr)
            time.sleep(delay)
            continue
        messages: list[dict[str, Any]] = page.get("messages") or []
        for message in messages:
            with stop:
                if deliver(args, message, out) != 0:
                    return 2
        if not messages and not page.get("waited", True) and wait:
            time.sleep(SHORT_POLL_SECONDS)


def deliver(args: argparse.Namespace, message: dict[str, Any], out: Any) -> int:
    """Forward one message, print its line, report it; 0, or 2 when the inbox refuses."""
    status, duration_ms, error = forward(args.to, message)
    print(line(message, status, duration_ms, error), file=out)
    out.flush()
    report = {
        "endpoint": args.endpoint,
        "name": args.name,
        "message": message["id"],
        "status_code": status,
        "duration_ms": duration_ms,
        "error": error,
    }
    # The report moves this listener's cursor: it is retried until the inbox takes
    # it, else the next poll would hand the same message out again.
    failures = 0
    while True:
        try:
            _api(args.server, args.token, "POST", "/api/v1/listen/report/", report)
            break
        except ApiError as exc:
            print(f"The inbox refused the report: {exc}", file=sys.stderr)
            return 2
        except SlowDown as exc:
            time.sleep(exc.seconds)
        except (OSError, ValueError):
            time.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
            failures += 1
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="listen.py", description="Forward an endpoint's new messages from a Webhook Inbox to a local app."
    )
    p.add_argument("--server", required=True, help="The inbox's address, e.g. http://127.0.0.1:8000")
    p.add_argument("--token", required=True, help="An API token (read scope is enough).")
    p.add_argument("--endpoint", required=True, help="The endpoint's name.")
    p.add_argument("--to", required=True, help="Where to send each message, e.g. http://127.0.0.1:3000/webhooks")
    p.add_argument(
        "--name", default="default", help="This listener's name: its cursor is kept per token, endpoint and name."
    )
    p.add_argument("--wait", type=int, default=WAIT_SECONDS, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.to.startswith(("http://", "https://")) or not args.server.startswith(("http://", "https://")):
        print("--server and --to must be http:// or https:// URLs", file=sys.stderr)
        return 2
    try:
        return run(args)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())

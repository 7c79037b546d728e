"""API tokens: each staff member creates and revokes their own (the JSON API, inbox/api/)."""

from __future__ import annotations

import json
import time

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

from inbox.dashboard.forms import ApiTokenForm
from inbox.dashboard.views.common import ask, staff_required
from inbox.models import ApiToken, AuditAction, AuditEntry
from inbox.secrets import decrypt, encrypt

# The same way a new endpoint secret reaches the next page (views/endpoints.py): encrypted
# in the session, popped by the first GET, dropped unread after a while, never in a URL.
SHOWN_TOKEN_KEY = "inbox.shown_api_token"
SHOWN_TOKEN_SECONDS = 600


def _pop_token(request: HttpRequest) -> dict[str, object] | None:
    stored = request.session.pop(SHOWN_TOKEN_KEY, None)
    if not stored:
        return None
    try:
        payload: dict[str, object] = json.loads(decrypt(stored))
    except ValueError:
        return None
    if time.time() - float(str(payload.get("at", 0))) > SHOWN_TOKEN_SECONDS:
        return None
    return payload


@staff_required
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        token, value = ApiToken.objects.issue(request.user, form.cleaned_data["name"], form.cleaned_data["scope"])
        AuditEntry.record(request.user, AuditAction.TOKEN_CREATED, f"API token “{token.name}”", scope=token.scope)
        payload = {"id": token.pk, "at": time.time(), "value": value}
        request.session[SHOWN_TOKEN_KEY] = encrypt(json.dumps(payload))
        return redirect("inbox:token-list")
    shown = _pop_token(request) if request.method == "GET" else None
    tokens = ApiToken.objects.filter(user_id=int(request.user.pk or 0))  # staff_required: signed in
    context = {"form": form, "tokens": tokens, "shown": shown, "shown_token": None}
    if shown:
        context["shown_token"] = tokens.filter(pk=int(str(shown["id"]))).first()
    response = render(request, "inbox/token_list.html", context)
    if shown:
        add_never_cache_headers(response)
        response["Cache-Control"] += ", no-store"
    return response


@staff_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk, user_id=int(request.user.pk or 0), revoked_at__isnull=True)
    if request.POST.get("confirmed") != "yes":
        # The page's script asks in a dialog and sets the field; without it, ask here.
        question = f"Revoke the API token “{token.name}”?"
        return ask(
            request,
            question,
            ["Programs and listeners using it get 401 from now on. This cannot be undone."],
            action_url=request.path,
            button="Revoke token",
            cancel_url=reverse("inbox:token-list"),
        )
    token.revoke()
    AuditEntry.record(request.user, AuditAction.TOKEN_REVOKED, f"API token “{token.name}”", scope=token.scope)
    return redirect("inbox:token-list")

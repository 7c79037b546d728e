"""The API's resources: endpoints, destinations, messages, bulk jobs, rejected attempts and
listen. Thin views over the models; every write is audited as the token's user, like the
dashboard's (AuditEntry.record; the request's audit scope merges the signals' plain entry)."""

from __future__ import annotations

import base64
import threading
import time
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import Max
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

import inbox.listen
from inbox.api import schema as _schema  # noqa: F401 - registers the bearer scheme
from inbox.api import serializers as s
from inbox.api.auth import ListenerRateThrottle
from inbox.api.paging import KeysetPagination
from inbox.delivery import routing
from inbox.delivery.forwarding import outbound_headers
from inbox.delivery.queue import enqueue_processing
from inbox.filters import MessageFilter, describe_query
from inbox.models import (
    AlertRule,
    ApiToken,
    Attempt,
    AttemptStatus,
    AuditAction,
    AuditEntry,
    BulkAction,
    BulkJob,
    Destination,
    Endpoint,
    ListenerCursor,
    Message,
)
from inbox.tasks import run_bulk_job

# Row ids in URLs: digits that fit a bigint (anything else is a 404 before any query).
ID = "[0-9]{1,18}"


class Permissions:
    """`permission_for`: the Django permission each action needs (None: any staff may read)."""

    required: dict[str, str] = {}

    def permission_for(self, request: Request) -> str | None:
        return self.required.get(getattr(self, "action", "") or "")


def _audit(request: Request, action_: AuditAction, target: str, endpoint: Endpoint | None, **details: Any) -> None:
    AuditEntry.record(request.user, action_, target, endpoint, via="api", **details)


# --- Endpoints ---------------------------------------------------------------------------------
@extend_schema_view(
    create=extend_schema(responses={201: s.EndpointCreatedSerializer}),
    update=extend_schema(responses={200: s.EndpointCreatedSerializer}),
    partial_update=extend_schema(responses={200: s.EndpointCreatedSerializer}),
)
class EndpointViewSet(Permissions, viewsets.ModelViewSet[Endpoint]):
    """Endpoints. Creating one (or changing its scheme, or giving a new secret) answers
    with its `url` and `credential`, this once."""

    queryset = Endpoint.objects.all()
    serializer_class = s.EndpointSerializer
    lookup_value_regex = ID
    required = {
        "create": "inbox.add_endpoint",
        "update": "inbox.change_endpoint",
        "partial_update": "inbox.change_endpoint",
        "rotate": "inbox.change_endpoint",
        "destroy": "inbox.delete_endpoint",
    }

    def _answer(self, endpoint: Endpoint, shown: dict[str, str], code: int) -> Response:
        context = {**self.get_serializer_context(), "show_url": code == status.HTTP_201_CREATED}
        data = s.EndpointCreatedSerializer(endpoint, context=context).data
        if "token" in shown:
            shown = {**shown, "token_header": endpoint.credential_header}
        data["credential"] = shown or None
        response = Response(data, status=code)
        if shown:
            response["Cache-Control"] = "no-store"
        return response

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        secret, options = data.pop("secret", "") or None, data.pop("scheme_options", None)
        endpoint = Endpoint(**data, created_by=request.auth.user, scheme_options=options or {})
        shown = endpoint.set_secret_answered(secret)
        endpoint.save()
        _audit(request, AuditAction.ENDPOINT_CREATED, endpoint.name, endpoint, preset=endpoint.auth)
        return self._answer(endpoint, shown, status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        endpoint = self.get_object()
        serializer = self.get_serializer(endpoint, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        secret, options = data.pop("secret", "") or None, data.pop("scheme_options", None)
        auth_changed = "auth" in data and data["auth"] != endpoint.auth
        changed = sorted(name for name, value in data.items() if getattr(endpoint, name) != value)
        for name, value in data.items():
            setattr(endpoint, name, value)
        if options is not None or auth_changed:
            endpoint.scheme_options = options or {}
            changed.append("scheme_options")
        shown: dict[str, str] = {}
        replaced = auth_changed or bool(secret)
        if replaced:
            # At once, no grace period (POST …/rotate/ keeps the old one valid for a while).
            shown = endpoint.set_secret_answered(secret)
            endpoint.previous_expires_at = None
            changed.append("secret")
        endpoint.save()
        _audit(
            request, AuditAction.ENDPOINT_CHANGED, endpoint.name, endpoint, changed=changed, secret_replaced=replaced
        )
        return self._answer(endpoint, shown, status.HTTP_200_OK)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        endpoint = self.get_object()
        # Its alert rules go with it (the database cascades): the entry names them.
        _, rules = AlertRule.objects.going_with(endpoint).described()
        _audit(request, AuditAction.ENDPOINT_DELETED, endpoint.name, endpoint, id=endpoint.pk, **rules)
        endpoint.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=s.RotateSerializer, responses={200: s.EndpointCreatedSerializer})
    @action(detail=True, methods=["post"])
    def rotate(self, request: Request, pk: str) -> Response:
        """A new credential; the previous one keeps verifying for `grace_hours`."""
        endpoint = self.get_object()
        serializer = s.RotateSerializer(data=request.data, context={"endpoint": endpoint})
        serializer.is_valid(raise_exception=True)
        grace_hours = serializer.validated_data["grace_hours"]
        secret = serializer.validated_data.get("secret") or None
        shown = endpoint.rotate_secret(secret, grace=timedelta(hours=grace_hours))
        _audit(
            request, AuditAction.SECRET_ROTATED, endpoint.name, endpoint, grace_hours=grace_hours, pasted=bool(secret)
        )
        return self._answer(endpoint, shown, status.HTTP_200_OK)

    @extend_schema(
        parameters=[OpenApiParameter("limit", int, description="At most this many (1-1000, default 100).")],
        responses={200: s.RejectedAttemptSerializer(many=True)},
    )
    @action(detail=True, methods=["get"])
    def rejected(self, request: Request, pk: str) -> Response:
        """Refused deliveries (metadata only), newest first; at most 1,000 are kept."""
        endpoint = self.get_object()
        limit = request.query_params.get("limit", "100")
        if not limit.isdigit() or not 1 <= int(limit) <= 1000:
            raise serializers.ValidationError({"limit": ["Enter a whole number from 1 to 1000."]})
        rows = endpoint.rejected_attempts.all()[: int(limit)]
        return Response(s.RejectedAttemptSerializer(rows, many=True).data)


# --- Destinations ------------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(parameters=[OpenApiParameter("endpoint", int, description="Only this endpoint's.")])
)
class DestinationViewSet(Permissions, viewsets.ModelViewSet[Destination]):
    """Where an endpoint's messages are forwarded."""

    queryset = Destination.objects.select_related("endpoint")
    serializer_class = s.DestinationSerializer
    lookup_value_regex = ID
    required = dict.fromkeys(("create", "update", "partial_update", "destroy"), "inbox.change_endpoint")

    def get_queryset(self) -> Any:
        queryset = super().get_queryset()
        if self.action == "list" and (endpoint := self.request.query_params.get("endpoint")):
            if not endpoint.isdigit() or len(endpoint) > 18:
                raise serializers.ValidationError({"endpoint": ["Enter an endpoint id."]})
            queryset = queryset.filter(endpoint_id=int(endpoint))
        return queryset

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        paused = data.pop("paused", False)
        destination = Destination(**data)
        # A signing secret is generated here and answered this once (like an endpoint's).
        secret = destination.set_signing_secret() if destination.sign else ""
        destination.save()
        _audit(request, AuditAction.DESTINATION_ADDED, destination.display_url, destination.endpoint)
        if paused:
            routing.pause(destination, request.auth.user, "paused when created")
        answer = dict(self.get_serializer(destination).data)
        if secret:
            answer["signing_secret"] = secret
        return Response(answer, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer: Any) -> None:
        instance: Destination = serializer.instance
        data = serializer.validated_data
        paused = data.pop("paused", None)
        changed = sorted(k for k, v in data.items() if getattr(instance, k) != v)
        signs_now = data.get("sign", instance.sign) and not instance.signing_secret_encrypted
        destination = serializer.save()
        if signs_now:
            # Signing turned on: its secret is shown in this answer only.
            self.new_signing_secret = destination.set_signing_secret()
            destination.save(update_fields=["signing_secret_encrypted"])
        if changed:
            _audit(
                self.request,
                AuditAction.DESTINATION_CHANGED,
                destination.display_url,
                destination.endpoint,
                changed=changed,
            )
        # PATCH {"paused": false} resumes: what was held is sent, oldest first, at the rate.
        if paused is True and not destination.paused:
            routing.pause(destination, self.request.auth.user, "paused through the API")
        elif paused is False and destination.paused:
            routing.resume(destination, self.request.auth.user)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        self.new_signing_secret = ""
        response = super().update(request, *args, **kwargs)
        destination = self.get_object()
        answer = dict(self.get_serializer(destination).data)
        if self.new_signing_secret:
            answer["signing_secret"] = self.new_signing_secret
        response.data = answer
        return response

    def perform_destroy(self, instance: Destination) -> None:
        # Its alert rules go with it (the database cascades): the entry names them.
        _, rules = AlertRule.objects.going_with(instance).described()
        instance.delete()
        _audit(self.request, AuditAction.DESTINATION_DELETED, instance.display_url, instance.endpoint, **rules)


# --- Messages ----------------------------------------------------------------------------------
class MessageViewSet(
    Permissions,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[Message],
):
    """Received messages. The list takes exactly the dashboard list's filters as query
    parameters (an invalid one is a 400 naming it, never every row), pages newest first
    with `limit` and an opaque `next` URL, and never counts."""

    queryset = Message.objects.select_related("endpoint").defer("body_text", "body_bytes")
    serializer_class = s.MessageSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = MessageFilter
    pagination_class = KeysetPagination
    lookup_value_regex = ID
    required = {"destroy": "inbox.delete_message", "replay": "inbox.change_message"}

    def get_queryset(self) -> Any:
        if self.action == "retrieve":
            return Message.objects.select_related("endpoint").prefetch_related("processing_attempts")
        return super().get_queryset()

    def get_serializer_class(self) -> Any:
        return s.MessageDetailSerializer if self.action == "retrieve" else s.MessageSerializer

    def perform_destroy(self, instance: Message) -> None:
        pk, endpoint = instance.pk, instance.endpoint
        instance.delete()
        _audit(self.request, AuditAction.MESSAGES_DELETED, f"message #{pk}", endpoint)

    @extend_schema(request=None, responses={202: s.MessageSerializer})
    @action(detail=True, methods=["post"])
    def replay(self, request: Request, pk: str) -> Response:
        """Process the message again (forward it, run its handlers)."""
        message = self.get_object()
        Message.objects.filter(pk=message.pk).start_replay()
        enqueue_processing(message.pk)
        _audit(request, AuditAction.MESSAGES_REPLAYED, f"message #{message.pk}", message.endpoint)
        message.refresh_from_db()
        return Response(s.MessageSerializer(message).data, status=status.HTTP_202_ACCEPTED)


# --- Bulk jobs -------------------------------------------------------------------------------------
AUDIT_ACTIONS = {
    BulkAction.REPLAY: AuditAction.MESSAGES_REPLAYED,
    BulkAction.DELETE: AuditAction.MESSAGES_DELETED,
    BulkAction.MARK_READ: AuditAction.MESSAGES_MARKED,
    BulkAction.MARK_UNREAD: AuditAction.MESSAGES_MARKED,
}


class JobViewSet(
    Permissions,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[BulkJob],
):
    """Bulk replay, delete, mark read or unread of every message a list filter matches,
    run by the worker; poll the job for its progress."""

    queryset = BulkJob.objects.all()
    serializer_class = s.JobSerializer
    lookup_value_regex = ID

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        jobs = self.get_queryset()[:100]
        return Response(self.get_serializer(jobs, many=True).data)

    def perform_create(self, serializer: Any) -> None:
        action_ = BulkAction(serializer.validated_data["action"])
        permission = "inbox.delete_message" if action_ == BulkAction.DELETE else "inbox.change_message"
        if not self.request.user.has_perm(permission):
            raise exceptions.PermissionDenied(f"Your account lacks the permission {permission}.")
        job = serializer.save(created_by=self.request.user)
        words = describe_query(job.query) or ""
        target = f"every message matching {words}" if words else "every message (no filter)"
        details: dict[str, Any] = {"bulk_job": job.pk}
        if AUDIT_ACTIONS[action_] == AuditAction.MESSAGES_MARKED:
            details["read"] = action_ == BulkAction.MARK_READ
        _audit(self.request, AUDIT_ACTIONS[action_], target, None, **details)
        run_bulk_job.enqueue(job.pk)


# --- listen -------------------------------------------------------------------------------------------
LISTEN_BATCH = 20
LISTEN_CHECK_SECONDS = 0.25


@cache
def _waiting_slots(size: int) -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(max(size, 0) or 1)


def _listen_message(message: Message, redacted: frozenset[str]) -> dict[str, Any]:
    return {
        "id": message.pk,
        "received_at": message.received_at,
        "method": message.method,
        "query_string": message.query_string,
        "content_type": message.content_type,
        "event_type": message.event_type,
        "headers": outbound_headers(message.headers, "*", redacted),
        "body_base64": base64.b64encode(message.body).decode(),
    }


def _listener(request: Request, endpoint_name: str, name: str) -> tuple[Endpoint, ListenerCursor]:
    endpoint = get_object_or_404(Endpoint, name=endpoint_name)
    token = request.auth
    assert isinstance(token, ApiToken)  # TokenPermission let only tokens through
    cursor = ListenerCursor.objects.filter(token=token, endpoint=endpoint, name=name).first()
    if cursor is None:
        # A new listener starts at the newest message: it forwards what arrives from now on.
        newest = endpoint.messages.aggregate(newest=Max("id"))["newest"] or 0
        cursor, _ = ListenerCursor.objects.get_or_create(
            token=token, endpoint=endpoint, name=name, defaults={"last_message_id": newest}
        )
    return endpoint, cursor


class ListenViewSet(Permissions, viewsets.ViewSet):
    """What `listen.py` calls: the next messages after this listener's cursor, and the
    report of each delivery (an attempt on the message; it moves the cursor). A read
    token may listen: the report records the listener's own delivery, nothing else."""

    read_scope_writes = True
    throttle_classes = [ListenerRateThrottle]

    @extend_schema(parameters=[s.ListenQuerySerializer], responses={200: s.ListenPageSerializer})
    def list(self, request: Request) -> Response:
        query = s.ListenQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        endpoint, cursor = _listener(request, query.validated_data["endpoint"], query.validated_data["name"])
        wait = min(query.validated_data["wait"], settings.INBOX_LISTEN_WAIT_SECONDS)

        def fetch() -> list[Message]:
            return list(endpoint.messages.filter(pk__gt=cursor.last_message_id).order_by("pk")[:LISTEN_BATCH])

        rows, waited = fetch(), True
        if not rows and wait > 0:
            # Each waiting poll holds a server thread: only INBOX_LISTEN_SLOTS of them may
            # wait at once, the others answer now (waited: false) and poll again shortly.
            slots = _waiting_slots(settings.INBOX_LISTEN_SLOTS)
            if slots.acquire(blocking=False):
                try:
                    deadline = time.monotonic() + wait
                    while not rows and time.monotonic() < deadline:
                        time.sleep(LISTEN_CHECK_SECONDS)
                        rows = fetch()
                finally:
                    slots.release()
            else:
                waited = False
        redacted = endpoint.redacted_header_names()
        data = {
            "messages": [_listen_message(m, redacted) for m in rows],
            "cursor": cursor.last_message_id,
            "waited": waited,
        }
        return Response(s.ListenPageSerializer(data).data)

    @extend_schema(request=s.ListenReportSerializer, responses={201: s.ListenPageSerializer})
    @action(detail=False, methods=["post"])
    def report(self, request: Request) -> Response:
        report = s.ListenReportSerializer(data=request.data)
        report.is_valid(raise_exception=True)
        data = report.validated_data
        endpoint, cursor = _listener(request, data["endpoint"], data["name"])
        message = get_object_or_404(
            Message.objects.only("id", "replays", "endpoint_id"), pk=data["message"], endpoint=endpoint
        )
        target = f"listener:{cursor.pk}"
        code = data["status_code"]
        Attempt.objects.create(
            message=message,
            endpoint=endpoint,
            replay=message.replays,
            number=Attempt.objects.filter(message=message, target=target).count() + 1,
            target=target,
            label=f"listen “{data['name']}” ({request.user.get_username()})"[:500],
            status=AttemptStatus.SUCCEEDED if code is not None and 200 <= code < 300 else AttemptStatus.FAILED,
            duration_ms=data["duration_ms"],
            status_code=code,
            error=data["error"],
        )
        cursor.advance(message.pk)
        page = {"messages": [], "cursor": cursor.last_message_id, "waited": False}
        return Response(s.ListenPageSerializer(page).data, status=status.HTTP_201_CREATED)


@cache
def _client_source() -> str:
    return Path(inbox.listen.__file__).read_text()


@extend_schema(exclude=True)
@api_view(["GET"])
@permission_classes([AllowAny])
def listen_script(request: Request) -> HttpResponse:
    """The listen client itself (standard library only), to download and run."""
    response = HttpResponse(_client_source(), content_type="text/x-python; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="listen.py"'
    return response


@csrf_exempt  # whatever the method, it changes nothing: answer 404, not the CSRF page
def not_found(request: HttpRequest) -> JsonResponse:
    """A URL under /api/v1/ that names no resource (or an id that is not a number)."""
    return JsonResponse({"detail": "Not found."}, status=404)

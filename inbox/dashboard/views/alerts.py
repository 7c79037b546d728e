"""Alerts in the dashboard: the alerts page (rules and the alerts they opened), the rule form,
mute, delete (asks first), acknowledge. Rules are evaluated by the worker (inbox/alerts/),
never here."""

from __future__ import annotations

import logging

from django.contrib import messages as django_messages
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from inbox.dashboard.forms import AlertFilterForm, AlertRuleForm
from inbox.dashboard.views.common import ask, post_or_back, staff_required
from inbox.models import Alert, AlertRule, AlertState, AuditAction, AuditEntry
from inbox.permissions import needs

logger = logging.getLogger("inbox.views")

# The page lists the newest alerts; older ones are pruned by the evaluator after 90 days.
ALERTS_SHOWN = 200


def _back(request: HttpRequest, **kwargs: object) -> str:
    return reverse("inbox:alert-list")


@staff_required
@require_GET
def alert_list(request: HttpRequest) -> HttpResponse:
    """Open, acknowledged and resolved alerts, newest first, by state and rule if asked;
    the rules above them. An invalid filter shows its error and no alert."""
    form = AlertFilterForm(request.GET if request.GET else None)
    alerts = Alert.objects.select_related("rule", "acknowledged_by")
    if form.is_bound and not form.is_valid():
        # As the message list does with its filters: the form says what is wrong, and an
        # invalid filter never widens the page to every alert.
        logger.info("alerts page refused invalid %s", ", ".join(form.errors))
        alerts = alerts.none()
    elif form.is_bound:
        if state := form.cleaned_data.get("state"):
            alerts = alerts.filter(state=state)
        if rule := form.cleaned_data.get("rule"):
            alerts = alerts.filter(rule=rule)
    rules = AlertRule.objects.select_related("endpoint", "destination").annotate(
        open_alerts=Count("alerts", filter=Q(alerts__state__in=[AlertState.OPEN, AlertState.ACKNOWLEDGED])),
        total_alerts=Count("alerts"),
    )
    page = list(alerts[: ALERTS_SHOWN + 1])
    context = {
        "form": form,
        "alerts": page[:ALERTS_SHOWN],
        "more": len(page) > ALERTS_SHOWN,
        "rules": rules,
        "shown": ALERTS_SHOWN,
    }
    return render(request, "inbox/alert_list.html", context)


@staff_required
@require_http_methods(["GET", "POST"])
@needs("inbox.add_alertrule")
def alert_rule_create(request: HttpRequest) -> HttpResponse:
    form = AlertRuleForm(request.POST or None, instance=AlertRule(created_by_id=request.user.pk))
    if request.method == "POST" and form.is_valid():
        rule = form.save()
        AuditEntry.record(
            request.user, AuditAction.ALERT_RULE_CREATED, f"alert rule “{rule.name}”", rule.endpoint, kind=rule.kind
        )
        django_messages.success(request, f"Alert rule “{rule.name}” saved: the worker checks it every minute.")
        return redirect("inbox:alert-list")
    if request.method == "POST":
        logger.info("alert rule form refused: %s", ", ".join(form.errors))
    return render(request, "inbox/alert_rule_form.html", {"form": form, "rule": None})


@staff_required
@require_http_methods(["GET", "POST"])
@needs("inbox.change_alertrule")
def alert_rule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(AlertRule, pk=pk)
    form = AlertRuleForm(request.POST or None, instance=rule)
    if request.method == "POST" and form.is_valid():
        window_before = AlertRule.objects.filter(pk=rule.pk).values_list("window_seconds", flat=True).first()
        rule = form.save()
        changed = set(form.changed_data) - {"window"}
        if window_before != rule.window_seconds:
            changed.add("window")
        AuditEntry.record(
            request.user,
            AuditAction.ALERT_RULE_CHANGED,
            f"alert rule “{rule.name}”",
            rule.endpoint,
            changed=sorted(changed),
        )
        django_messages.success(request, f"Alert rule “{rule.name}” saved.")
        return redirect("inbox:alert-list")
    if request.method == "POST":
        logger.info("alert rule form refused: %s", ", ".join(form.errors))
    alert_count = rule.alerts.count()
    return render(request, "inbox/alert_rule_form.html", {"form": form, "rule": rule, "alert_count": alert_count})


@staff_required
@post_or_back(_back)
@needs("inbox.change_alertrule")
def alert_rule_mute(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(AlertRule, pk=pk)
    value = request.POST.get("muted")
    if value not in ("true", "false"):
        logger.info("alert rule mute refused muted=%r", (value or "")[:20])
        return HttpResponseBadRequest("muted must be true or false.", content_type="text/plain")
    muted = value == "true"
    if rule.muted != muted:
        rule.muted = muted
        rule.save(update_fields=["muted"])
        action = AuditAction.ALERT_RULE_MUTED if muted else AuditAction.ALERT_RULE_UNMUTED
        AuditEntry.record(request.user, action, f"alert rule “{rule.name}”", rule.endpoint)
    if muted:
        django_messages.success(request, f"“{rule.name}” is muted: its alerts are still listed, nobody is notified.")
    else:
        django_messages.success(request, f"“{rule.name}” notifies again from its next alert.")
    return redirect("inbox:alert-list")


@staff_required
@post_or_back(_back)
@needs("inbox.delete_alertrule")
def alert_rule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(AlertRule, pk=pk)
    count = rule.alerts.count()
    alerts = f"its {count} alert{'' if count == 1 else 's'}" if count else "no alert yet"
    if request.POST.get("confirmed") != "yes":
        # The page's script asks in a dialog and sets the field; without it, ask here.
        question = f"Delete the alert rule “{rule.name}” and {alerts}?"
        return ask(
            request,
            question,
            [
                "Nobody is notified of this condition any more, and its alerts leave the alerts page. "
                "This cannot be undone (muting it keeps both)."
            ],
            action_url=request.path,
            button="Delete alert rule",
            cancel_url=reverse("inbox:alert-list"),
        )
    AuditEntry.record(
        request.user, AuditAction.ALERT_RULE_DELETED, f"alert rule “{rule.name}”", rule.endpoint, alerts=count
    )
    rule.delete()
    django_messages.success(request, f"Alert rule “{rule.name}” deleted, with {alerts}.")
    return redirect("inbox:alert-list")


@staff_required
@post_or_back(_back)
@needs("inbox.change_alert")
def alert_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    alert = get_object_or_404(Alert.objects.select_related("rule", "rule__endpoint"), pk=pk)
    if alert.acknowledge(request.user):
        target = f"alert #{alert.pk} of “{alert.rule.name}”"
        AuditEntry.record(request.user, AuditAction.ALERT_ACKNOWLEDGED, target, alert.rule.endpoint)
        django_messages.success(request, f"Alert #{alert.pk} acknowledged: it still resolves by itself.")
    elif alert.state == AlertState.RESOLVED:
        django_messages.info(request, "That alert is already resolved.")
    else:
        django_messages.info(request, "That alert is already acknowledged.")
    return redirect("inbox:alert-list")

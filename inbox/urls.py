from __future__ import annotations

from django.urls import path

from inbox.dashboard import views

app_name = "inbox"

urlpatterns = [
    path("", views.message_list, name="message-list"),
    path("messages/new/", views.message_list_new, name="message-list-new"),
    path("messages/export.ndjson", views.export_ndjson, name="export-ndjson"),
    path("messages/export.csv", views.export_csv, name="export-csv"),
    path("messages/<int:pk>/", views.message_detail, name="message-detail"),
    path("messages/<int:pk>/raw/", views.message_raw, name="message-raw"),
    path("messages/<int:pk>/delete/", views.message_delete, name="message-delete"),
    path("messages/<int:pk>/replay/", views.message_replay, name="message-replay"),
    path("messages/bulk/", views.messages_bulk, name="messages-bulk"),
    path("messages/compare/", views.message_compare, name="message-compare"),
    path("jobs/<int:pk>/", views.job_detail, name="job-detail"),
    path("audit/", views.audit_list, name="audit-list"),
    path("alerts/", views.alert_list, name="alert-list"),
    path("alerts/<int:pk>/acknowledge/", views.alert_acknowledge, name="alert-acknowledge"),
    path("alerts/rules/new/", views.alert_rule_create, name="alert-rule-create"),
    path("alerts/rules/<int:pk>/edit/", views.alert_rule_edit, name="alert-rule-edit"),
    path("alerts/rules/<int:pk>/mute/", views.alert_rule_mute, name="alert-rule-mute"),
    path("alerts/rules/<int:pk>/delete/", views.alert_rule_delete, name="alert-rule-delete"),
    path("tokens/", views.token_list, name="token-list"),
    path("tokens/<int:pk>/revoke/", views.token_revoke, name="token-revoke"),
    path("endpoints/", views.endpoint_list, name="endpoint-list"),
    path("endpoints/new/", views.endpoint_create, name="endpoint-create"),
    path("endpoints/quick/", views.endpoint_quick, name="endpoint-quick"),
    path("endpoints/<int:pk>/", views.endpoint_detail, name="endpoint-detail"),
    path("endpoints/<int:pk>/first-delivery/", views.endpoint_first_delivery, name="endpoint-first-delivery"),
    path("endpoints/<int:pk>/edit/", views.endpoint_edit, name="endpoint-edit"),
    path("endpoints/<int:pk>/rotate/", views.endpoint_rotate, name="endpoint-rotate"),
    path("endpoints/<int:pk>/delete/", views.endpoint_delete, name="endpoint-delete"),
    path("endpoints/<int:pk>/new-url/", views.endpoint_new_url, name="endpoint-new-url"),
    path("endpoints/<int:pk>/test/", views.endpoint_send_test, name="endpoint-send-test"),
    path("endpoints/<int:pk>/destinations/new/", views.destination_create, name="destination-create"),
    path("destinations/<int:pk>/edit/", views.destination_edit, name="destination-edit"),
    path("destinations/<int:pk>/delete/", views.destination_delete, name="destination-delete"),
    path("destinations/<int:pk>/rotate/", views.destination_rotate, name="destination-rotate"),
    path("destinations/<int:pk>/pause/", views.destination_pause, name="destination-pause"),
    path("destinations/<int:pk>/resume/", views.destination_resume, name="destination-resume"),
]

"""The JSON API under /api/v1/ (Django REST framework, OpenAPI by drf-spectacular).

An entry point like the dashboard, in its layer (docs/architecture.md): it reads and
changes the same models with the same rules, through the same lower layers (the message
query language for filters, delivery for replays and bulk jobs).
"""

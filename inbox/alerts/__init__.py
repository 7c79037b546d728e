"""Alerts: rules evaluated by the worker every minute, the alerts they open and resolve, and
the notifications they send (docs/architecture.md, "Alerts")."""

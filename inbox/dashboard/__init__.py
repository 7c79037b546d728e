"""The staff dashboard: views, forms, the payload viewer and charts (docs/architecture.md)."""

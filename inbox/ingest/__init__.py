"""The public receiver: `/hooks/<slug>/` (docs/architecture.md, "The ingest pipeline")."""

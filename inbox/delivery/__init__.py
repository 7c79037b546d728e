"""Delivery: what happens to an accepted message after the receiver answered (docs/architecture.md)."""

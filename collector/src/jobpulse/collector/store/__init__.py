"""Storage: one interface (base.py), SQLite as the embedded default."""

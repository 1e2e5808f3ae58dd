"""The PostgreSQL reservation baseline of `make bench` (see app.py)."""

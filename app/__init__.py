"""Omnistock: real-time inventory availability and reservations on Redis."""

__version__ = "0.1.0"

"""The flash-sale peer of `make bench`: a FastAPI + Lua counter (see app.py)."""

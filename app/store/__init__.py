"""The store: Redis connection, Lua script registry, and the embedded server."""

"""The domain: decides what happens; the store's Lua scripts make it happen atomically."""

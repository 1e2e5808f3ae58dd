"""HTTP layer: validates and translates; the domain decides."""

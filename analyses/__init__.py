"""analyses layer (see DESIGN.md)."""

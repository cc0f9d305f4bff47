"""interp layer (see DESIGN.md)."""

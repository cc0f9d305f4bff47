"""figures layer (see DESIGN.md)."""

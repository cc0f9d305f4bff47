"""The analyses layer: experiments on checkpoints that write result files (docs/ARCHITECTURE.md)."""

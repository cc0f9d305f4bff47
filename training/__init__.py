"""The training layer: toy models, scoring, pretraining, CPT, SFT, GRPO (docs/ARCHITECTURE.md)."""

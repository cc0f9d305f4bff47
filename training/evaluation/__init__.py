"""Evaluation: scoring a model's answers (:mod:`.scoring`: option log-likelihoods, greedy
generation) and the run's dataset with quick recall checks (:mod:`.data`). It sits below both the
training methods and the analyses: it imports no trainer (an import-linter contract in
``pyproject.toml``), and both use it."""

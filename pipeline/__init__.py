"""Configuration, presets, the ``polyfact`` command line and the end-to-end run."""

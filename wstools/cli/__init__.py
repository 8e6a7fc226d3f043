"""Command-line layer: one module per command; flags in, files out, no algorithms."""

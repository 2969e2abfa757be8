"""Scorers: one module per family, behind a registry that plugins extend."""

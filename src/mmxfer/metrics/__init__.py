"""Metrics equal to the official scorers. Importing this package registers them."""

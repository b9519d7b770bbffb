"""Trunks, vision towers, fusion and heads. Importing this package registers them."""

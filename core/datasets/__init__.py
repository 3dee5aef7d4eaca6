"""Importing, validating and cataloguing the image/mask datasets users bring."""

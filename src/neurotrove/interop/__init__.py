"""Interoperability: ONE's cache tables (export and import) and AllenSDK's project cache."""

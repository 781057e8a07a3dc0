"""Alyx's REST API, as ONE-api and alyx-connector use it, answered from the trove."""

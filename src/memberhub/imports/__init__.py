"""Imports of members and purchases uploaded over the API, run as background jobs."""

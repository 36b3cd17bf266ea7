"""Deployment providers: built-ins and the entry point registry."""

"""The weave runtime: standard library only; copied into every artifact."""

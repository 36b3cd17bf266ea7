"""The ``local`` provider: the weave served by a detached process on this machine (``provider``)."""

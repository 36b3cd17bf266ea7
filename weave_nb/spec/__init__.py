"""Weave files: parse, validate and model ``.weave.yaml`` (format 1.0).

- :mod:`.yaml_loader`: reads the YAML within bounds (size, alias expansion, characters);
- :mod:`.validator`: checks the document and names every mistake with its place;
- :mod:`.model`: :class:`WeaveSpec` and the functions that load one.

Data flows one way (yaml_loader → validator → model), so there is no import cycle.
"""

from .model import MAX_WEAVE_BYTES, SUPPORTED_VERSIONS, AgentSpec, WeaveDef, WeaveSpec, find_weave_file, load_weave, parse_weave

__all__ = ["MAX_WEAVE_BYTES", "SUPPORTED_VERSIONS", "AgentSpec", "WeaveDef", "WeaveSpec", "find_weave_file", "load_weave", "parse_weave"]

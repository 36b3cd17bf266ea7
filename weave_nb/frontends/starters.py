"""Starter weave files that ``weave init`` writes: each deploys as is (local provider, mock model, no key)."""

from __future__ import annotations

HELLO = """\
# A starter weave, written by `weave init`. It deploys as is:
#   weave deploy --name hello
#   weave invoke hello --input "world"
# The mock model answers offline; change `model:` to e.g. openai:gpt-4o-mini
# (and set OPENAI_API_KEY) for a real one.
version: "1.0"

agents:
  greeter:
    model: mock
    outputs: greeting
    config:
      system: Greet the user warmly.

weaves:
  hello:
    description: Say hello (mock model, works offline)
    agents: [greeter]

deployment:
  provider: local
"""

PIPELINE = """\
# A starter pipeline, written by `weave init --example pipeline`. It deploys as is:
#   weave deploy --name pipeline
#   weave invoke pipeline --input "tides"
# Each agent reads the output of the one it names in `inputs:`; the mock
# model answers offline, so no API key is needed.
version: "1.0"

agents:
  researcher:
    model: mock
    outputs: research_summary
    config:
      system: Summarise the key facts about the topic.
  writer:
    model: mock
    inputs: researcher
    outputs: draft
    prompt: |
      Write a short article about: {input}
      Base it on this research:
      {research_summary}

weaves:
  pipeline:
    description: Research a topic, then write about it
    agents: [researcher, writer]

deployment:
  provider: local
"""

STARTERS: dict[str, str] = {"hello": HELLO, "pipeline": PIPELINE}

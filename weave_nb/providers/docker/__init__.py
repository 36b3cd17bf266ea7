"""The ``docker`` provider: the weave as a container image, run on a Docker engine or pushed to a registry.

Modules, in the order data flows through them:

- ``image``: what goes into the image (Dockerfile, build context, names, labels); pure.
- ``engine`` and ``registry``: the connected engine (docker-py), streamed build, pull and push, health waits.
- ``state``: docker-py's Container models read as what a plan needs, and as a DeploymentInfo.
- ``planner``: observes the engine and decides every step of a deploy or undeploy (changes nothing).
- ``steps``: one apply/undo function per step call, run by the core executor.
- ``provider``: the :class:`DockerProvider` and its options.

``weave_nb.providers.docker.provider`` re-exports the provider (the entry point names it).
Importing this package never loads the docker SDK: that happens once an engine is reached.
"""

"""The front ends: the ``weave`` CLI, the IPython magics, the widgets and the Python API.

They share one core (:mod:`weave_nb.core`): the ``DeploymentManager``, the
presenters in :mod:`weave_nb.core.present` and the error classifier in
:mod:`.shared`. None of them knows a provider's internals. Private: the public
names are re-exported by :mod:`weave_nb`.
"""

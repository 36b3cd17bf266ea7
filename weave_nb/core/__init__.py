"""The core every front end shares: config models, the artifact, the plan as data and its executor,
ownership marks, the inventory, events, the manager and the listing rule.

Data flows down: the core never imports a front end, IPython or ipywidgets
(pandas only lazily); it reaches providers only through their contract
(:mod:`weave_nb.providers.base`) and the registry.
"""

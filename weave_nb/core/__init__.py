"""The core every provider and front end shares: the plan as data, the executor that runs it, ownership marks.

Nothing here imports a provider, IPython or ipywidgets.
"""

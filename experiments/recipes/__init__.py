"""Recipes for the numbered figure set that ``symbreak figures`` regenerates.

:mod:`.common` holds the framework (the registry, the run context, the recorder that keeps every plotted
number for the figure's CSV, the critical-time markers, deterministic saving). Every other module of
this package registers its figures with :func:`.common.recipe`; :func:`.common.load_recipes` imports
them all, so a new figure module is picked up without editing anything else.
"""

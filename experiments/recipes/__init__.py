"""Recipes for the numbered figure set that ``symbreak figures`` regenerates.

:mod:`.common` holds the framework (the registry, the run context, the recorder that keeps every plotted
number for the figure's CSV, the critical-time markers, deterministic saving). Each figure is a
``compute(ctx) -> Result`` (every number it shows, in a dataclass, without matplotlib) and a
``draw(result) -> FigureOutput`` (plot and caption), registered together with :func:`.common.recipe`:
figures 1-2 in :mod:`.theory_figures`, 3 in :mod:`.imperfect_figure`, 11 in :mod:`.schedule_figure`, 4-5 in
:mod:`.network_figures`, 6-7 in :mod:`.trajectory_figures`, 8-10 in :mod:`.evaluation_figures`, 12 in
:mod:`.solver_figures`, 13 in :mod:`.window_figures`; :mod:`.margin` draws the `critical-time` plot (no number).
:func:`.common.load_recipes` imports every module of this package, so a new figure module is picked up
without editing anything else.
"""

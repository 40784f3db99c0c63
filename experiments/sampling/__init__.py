"""Sampling: noise levels and time grids, the samplers, start states (noise, late, Gaussian late start), per-
sample seeds and batched drawing."""

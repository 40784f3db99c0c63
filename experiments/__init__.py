"""Trained networks (torch): denoisers, samplers, Gaussian late start, measurements, figure recipes and the CLI."""

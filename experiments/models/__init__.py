"""Denoisers and the networks behind them: the Denoiser interface and adapters, the exact oracles,
networks, training and its cache, local diffusers checkpoints, the in-domain feature classifier."""

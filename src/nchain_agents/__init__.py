"""Agents for NChain-v0: a pluggy registry and one Stable-Baselines3-style API."""

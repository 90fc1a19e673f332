"""Experiments: task files, executors (local, SkyPilot), results, statistics, cost."""

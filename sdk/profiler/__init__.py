"""Measuring bundles: the profiler, the device-side agent, statistics, run hygiene, results.

``profile`` is in run.py; the agent (agent.py) is what a device runs, with no torch;
target.py opens what is measured (a bundle, or a bare model file pocketbert did not write).
"""

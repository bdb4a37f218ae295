"""The device lab: how a measurement reaches a device (``@register_transport``).

local runs the agent in a fresh process here; ssh (boards) and adb-python (rooted boards with
Python) push the bundle, run ``pocketbert agent`` there and bring the record back; adb (phones)
drives the Android demo app's benchmark mode; emulated estimates from the bundle's counted work
and the device's peak figures, and says so.
"""

from pocketbert.lab import adb, adb_python, emulated, local, ssh  # noqa: F401  (registers transports)
from pocketbert.lab.registry import TRANSPORTS, Job, register_transport

__all__ = ["TRANSPORTS", "Job", "register_transport"]

"""The device lab: how a measurement reaches a device (``@register_transport``).

local runs the agent in a fresh process here; ssh (boards) and adb-python (rooted boards with
Python) push the bundle, run ``pocketbert agent`` there and bring the record back; adb (phones)
drives the Android demo app's benchmark mode; emulated estimates from the bundle's counted work
and the device's peak figures, and says so; fpga-model estimates an fpga bundle on a
systolic-array accelerator built from an fpga device's resources.
"""

from pocketbert.lab import (  # noqa: F401  (registers transports)
    adb,
    adb_python,
    emulated,
    fpga_model,
    local,
    ssh,
)
from pocketbert.lab.registry import TRANSPORTS, Job, register_transport

__all__ = ["TRANSPORTS", "Job", "register_transport"]

"""Calibration: event logs and their statistics, the fit through the simulator, fidelity, reports, data adapters."""

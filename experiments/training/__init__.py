"""Training: experiment configs, RLlib training judged on held-out customers, progress, Tune sweeps."""

"""The command line: the only place that knows argparse, printing and exit codes."""

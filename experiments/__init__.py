"""journeylab experiments."""

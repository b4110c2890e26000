"""journeylab serving."""

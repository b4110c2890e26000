"""Promotion: policies compared from MLflow, the champion chosen on evidence, registered and exported."""

FORMATS = ("table", "markdown", "csv", "json")
"""How a comparison can be rendered (``journeylab compare --format``)."""

"""Promotion: policies compared from MLflow, the champion chosen on evidence, registered and exported."""

"""Whole-base decisions: tonight's decisions for every customer, under the rules and the volume constraints."""

"""The evaluation harness: cohorts, paired evaluation, sharding over Ray, per-customer outcomes, figures."""

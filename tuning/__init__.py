"""Keras Tuner searches over the studies' search spaces (`python -m tuning.search SPACE`)."""

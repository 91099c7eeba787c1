"""Accuracy tables and loss-landscape figures built from run folders."""

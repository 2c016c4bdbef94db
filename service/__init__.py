"""Rujukan: referrals of vulnerable people between Kemensos, LPSK and KemenHAM."""

__version__ = "0.1.0"

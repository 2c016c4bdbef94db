"""Referral statistics: counts, time per step, success rate, overdue counts."""

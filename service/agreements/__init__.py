"""Cooperation agreements (MoU, PKS) between agencies, and the agencies themselves."""

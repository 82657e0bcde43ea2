"""Entitlements and grants: their values, writes, balance snapshots and threshold notifications.

Each module says what it holds; import a name from the module that holds it.
"""

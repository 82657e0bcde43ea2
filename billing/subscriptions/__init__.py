"""Subscription writes: create, change, cancel, add-ons, and the timeline and schedule they share.

Each module says what it holds; import a name from the module that holds it.
"""

"""The imperative shell of billing-ops: Dramatiq actors, the store and every I/O adapter."""

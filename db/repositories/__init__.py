"""Repositories: the queries the worker and the API run, one class per table.

They take an `AsyncSession` and never commit: the caller owns the unit of work.
"""

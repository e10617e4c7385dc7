"""Celery workers: tasks, job lifecycle and the adapter to sagd_core."""

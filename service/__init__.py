"""The REST service: the HTTP layer (service.api) over the job layer (service.jobs)."""

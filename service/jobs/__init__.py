"""The job layer: job records, queue messages, storage, model registry, image and archive
decoding, webhooks and metrics. Imported by the API and by the workers; never imports FastAPI."""

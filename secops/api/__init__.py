"""HTTP API (FastAPI): validates input, checks permissions, calls services, enqueues."""

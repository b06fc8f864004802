"""Services: orchestrate engines and the database. They take a keyword-only ``session`` and
never commit; the boundary (API route, Celery task, CLI command) does."""

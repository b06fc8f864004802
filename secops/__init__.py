"""SecOps: an organisation's security operations as background jobs."""

__version__ = "0.1.0"

"""jobpulse collector: one per cluster; gRPC ingest, SQLite storage and the HTTP API in one process."""

"""Domain types of the collector, independent of HTTP, SQL and protobuf (see docs/architecture.md)."""

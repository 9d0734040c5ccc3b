"""HTTP API route modules: thin handlers over the store and services."""

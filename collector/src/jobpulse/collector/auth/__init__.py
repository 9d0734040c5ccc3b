"""Authentication and authorisation: local users, sessions (JWT), API keys, role guards."""

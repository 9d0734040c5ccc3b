"""Code shared by the jobpulse agent and collector."""

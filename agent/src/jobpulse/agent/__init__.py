"""jobpulse node agent: measures Slurm jobs on one compute node and streams to the collector."""

"""Reading jobs from Slurm's command-line tools (squeue, sacct, scontrol) on the collector host."""

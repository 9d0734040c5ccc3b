#!/bin/sh
# jobpulse Slurm epilog: report the job's end to the node's jobpulse agent.
#
# Install as /etc/slurm/epilog.d/50-jobpulse.sh (mode 0755, owned by root) and set in slurm.conf
#   Epilog=/etc/slurm/epilog.d/*
# slurmd runs it as root for every job. It must never fail or stall the job, so:
#   - it always exits 0 (a non-zero epilog would drain the node);
#   - the agent call is capped by timeout(1) at 1.8 s (the agent itself gives up after 1 s and
#     spools the event to /var/lib/jobpulse/events, to be sent when the agent is back);
#   - it calls no Slurm command; problems go to syslog (tag jobpulse-hook).
# Optional settings, one VAR=value per line, in jobpulse-hook.env next to slurm.conf:
#   JOBPULSE_AGENT=/opt/jobpulse/bin/jobpulse-agent   the agent command
#   JOBPULSE_STATE_DIR=/var/lib/jobpulse              the agent's state directory (events, job state)
#   JOBPULSE_SOCKET=/run/jobpulse/agent.sock          the agent's event socket
trap 'exit 0' EXIT
conf="${SLURM_CONF:-/etc/slurm/slurm.conf}"
env_file="${conf%/*}/jobpulse-hook.env"
if [ -r "$env_file" ]; then
  set -a
  . "$env_file"
  set +a
fi
agent="${JOBPULSE_AGENT:-/opt/jobpulse/bin/jobpulse-agent}"
[ -x "$agent" ] || exit 0
timeout -k 0.2 1.8 "$agent" epilog </dev/null >/dev/null 2>&1 || logger -t jobpulse-hook "epilog job ${SLURM_JOB_ID:-?}: $agent timed out or failed ($?)" 2>/dev/null
exit 0

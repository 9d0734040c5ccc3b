#!/bin/sh
# jobpulse Slurm prolog: report the job's start to the node's jobpulse agent.
#
# Install as /etc/slurm/prolog.d/50-jobpulse.sh (mode 0755, owned by root) and set in slurm.conf
#   Prolog=/etc/slurm/prolog.d/*
# slurmd runs it as root for every job. It must never fail or stall the job, so:
#   - it always exits 0 (a non-zero prolog would drain the node and requeue the job);
#   - the agent call is capped by timeout(1) at 1.8 s (the agent itself gives up after 1 s and
#     spools the event to /var/lib/jobpulse/events, to be sent when the agent is back);
#   - it calls no Slurm command. The agent command logs to syslog (tag jobpulse-hook), or to
#     $JOBPULSE_STATE_DIR/hooks.log where there is no /dev/log; anything else it writes to stderr
#     (a Python that cannot start, a crash) and a timeout go to the journal through systemd-cat, or,
#     without a journal, to the same hooks.log (root-only, kept under 1 MiB).
# Optional settings, one VAR=value per line, in jobpulse-hook.env next to slurm.conf:
#   JOBPULSE_AGENT=/opt/jobpulse/bin/jobpulse-agent   the agent command
#   JOBPULSE_STATE_DIR=/var/lib/jobpulse              the agent's state directory (events, job state)
#   JOBPULSE_SOCKET=/run/jobpulse/agent.sock          the agent's event socket
#   JOBPULSE_AGENT_CONFIG=/etc/jobpulse/agent.toml    the agent's settings file
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
err=$(timeout -k 0.2 1.8 "$agent" prolog </dev/null 2>&1 >/dev/null)
rc=$?
[ "$rc" -eq 0 ] && [ -z "$err" ] && exit 0
# Only on trouble from here. The job id is the environment's: digits only, never code (sed, printf).
[ "$rc" -eq 0 ] || err="${err:+$err
}$agent prolog timed out or failed (exit $rc)"
job=$(printf '%s' "${SLURM_JOB_ID:-}" | tr -cd '0-9' | cut -c1-20)
err=$(printf '%s\n' "$err" | head -c 4096 | while IFS= read -r line; do printf 'prolog job %s: %s\n' "${job:-?}" "$line"; done)
if command -v systemd-cat >/dev/null 2>&1 && printf '%s\n' "$err" | timeout 0.5 systemd-cat -t jobpulse-hook -p warning 2>/dev/null; then
  exit 0
fi
log="${JOBPULSE_STATE_DIR:-/var/lib/jobpulse}/hooks.log"
umask 077
if [ -d "${log%/*}" ] && [ ! -L "$log" ]; then
  [ "$(wc -c 2>/dev/null <"$log" || echo 0)" -lt 1048576 ] || mv -f "$log" "$log.1" 2>/dev/null
  printf '%s %s\n' "$(date '+%Y-%m-%dT%H:%M:%S' 2>/dev/null)" "$err" >>"$log" 2>/dev/null
fi
exit 0

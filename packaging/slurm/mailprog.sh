#!/bin/sh
# Slurm MailProg that adds jobpulse's job report to the end-of-job mail (README: "A job's report").
# slurm.conf: MailProg=/etc/slurm/jobpulse-mailprog.sh (a copy of this file). slurmctld runs it as
# SlurmUser with `-s SUBJECT RECIPIENT`; the collector's URL and an API key come from
# /etc/jobpulse/client.toml (url = ..., api_key = ...), which only SlurmUser should be able to read.
# `jobpulse mail` always hands the mail to the real mail program, with or without a report.
exec "${JOBPULSE_BIN:-/opt/jobpulse/bin/jobpulse}" mail "$@"

"""`jobpulse report <job>`: the job report people read in a terminal or in their end-of-job email.

A client of the collector's HTTP API, like JobMon's front end: it never opens the database, so it runs
on a login node with only a URL and a credential (``client.py``), and a user sees exactly the jobs the
API lets them see. ``render.py`` turns the job's answer into text (or JSON); ``mail.py`` is the mode for
Slurm's MailProg.
"""

"""The service layer: the collector's rules, between the API dialects and the store.

Every dialect (api/jobmon/ today, others beside it) parses a request, calls a service with a
:class:`~jobpulse.collector.domain.principals.Principal` and plain values, and maps the answer to its
own shapes. Services hold the rules (who sees what, how a job's lifecycle is recorded, which
resolution a chart gets) and talk to storage only through the store's named methods. They raise
domain errors (domain/errors.py), never HTTP ones.
"""

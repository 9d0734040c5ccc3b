"""The keys of ``POST /api/dashboard/charts`` that Slurm Usage History's front end reads (its
types/index.ts ``AggregatedChartsResponse``, issue 18), shared by the route tests and the contract test."""

CHART_KEYS = {
    "summary", "cpu_usage_over_time", "gpu_usage_over_time", "active_users_over_time",
    "active_users_distribution", "jobs_over_time", "jobs_distribution", "jobs_by_account", "jobs_by_partition",
    "jobs_by_state", "waiting_times_hist", "waiting_times_stacked", "job_duration_hist", "job_duration_stacked",
    "waiting_times_over_time", "job_duration_over_time", "waiting_times_trends", "job_duration_trends",
    "cpus_per_job", "gpus_per_job", "nodes_per_job", "cpu_hours_by_account", "gpu_hours_by_account",
    "node_cpu_usage", "node_gpu_usage", "user_activity_frequency",
}  # fmt: skip

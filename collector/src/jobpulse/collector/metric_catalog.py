"""The metric catalogue: what each stored job metric is called, measured in and aggregated by.

Defaults cover every job_samples column (one entry each, GUID = column name so URLs stay readable);
an admin may edit display names, units, default aggregation and partitions with
``PATCH /api/config/update`` (services/config.py); the edited catalogue is kept in the ``api_config``
table (store/sqlite_config.py). The rules here are plain functions of the stored parts.
"""

from __future__ import annotations

import msgspec
from jobpulse.collector.domain.errors import InvalidInput
from jobpulse.collector.schemas import Configuration, MetricConfig, PartitionConfig
from jobpulse.collector.store.base import StoredConfig
from jobpulse.collector.store.migrations import JOB_SAMPLE_COLUMNS

__all__ = ["Configuration", "MetricConfig", "PartitionConfig"]

AGG_FNS = ("mean", "min", "max", "sum")
AGG_ALIASES = {"avg": "mean"}
CATEGORIES = ["cpu", "mem", "io", "gpu"]
# The job list's radar chart (JobMon's page draws one axis per entry a job has figures for). Peak memory is
# one: on a cgroup v1 Slurm node there is no blkio data and most nodes have no GPU, so without it a CPU
# job's radar had two axes, a line instead of a shape; and peak against limit is what a user sizes --mem by.
RADAR_CHART = [
    "cpu_cores",
    "mem_current_bytes",
    "mem_peak_bytes",
    "io_read_bytes",
    "io_write_bytes",
    "gpu_util_percent",
]
# JobMon's default MetricQuantiles: the Quantile View's quantiles across nodes, as JobMon spells them
METRIC_QUANTILES = ("0.25", "0.5", "0.75")
# JobMon's MetricConfig.Type is the collection granularity ("node", "socket", "cpu" per hardware thread).
# Every jobpulse series is one job's on one node, so every metric is "node" (and separated by hostname).
GRANULARITY = "node"

# column -> (display name, unit, category, default aggFn). Units as JobMon spells them ("B", "%", ...).
_DEFAULTS: dict[str, tuple[str, str, str, str]] = {
    "cpu_user_seconds": ("CPU user time", "s", "cpu", "max"),
    "cpu_system_seconds": ("CPU system time", "s", "cpu", "max"),
    "cpu_cores": ("CPU cores used", "", "cpu", "mean"),
    "alloc_cpus": ("Allocated CPUs", "", "cpu", "max"),
    "mem_current_bytes": ("Memory used", "B", "mem", "mean"),
    "mem_peak_bytes": ("Memory peak", "B", "mem", "max"),
    "mem_anon_bytes": ("Anonymous memory", "B", "mem", "mean"),
    "mem_file_bytes": ("Page cache", "B", "mem", "mean"),
    "mem_limit_bytes": ("Memory limit", "B", "mem", "max"),
    "oom_kills": ("OOM kills", "", "mem", "max"),
    "io_read_bytes": ("Bytes read", "B", "io", "max"),
    "io_write_bytes": ("Bytes written", "B", "io", "max"),
    "pids": ("Processes", "", "cpu", "mean"),
    "gpu_util_percent": ("GPU utilisation", "%", "gpu", "mean"),
    "gpu_mem_bytes": ("GPU memory used", "B", "gpu", "mean"),
    "gpu_power_watts": ("GPU power", "W", "gpu", "mean"),
}
assert set(_DEFAULTS) == set(JOB_SAMPLE_COLUMNS), "every stored job metric needs a catalogue entry"


class CatalogError(InvalidInput):
    """An invalid catalogue edit; ``field`` names the offending field (a 400 naming it)."""


def default_metrics(sample_interval: str) -> list[MetricConfig]:
    return [
        MetricConfig(
            GUID=column,
            Measurement=column,
            Type=GRANULARITY,
            Categories=[category],
            AggFn=agg,
            SampleInterval=sample_interval,
            Unit=unit,
            DisplayName=name,
            SeparationKey="hostname",
        )
        for column, (name, unit, category, agg) in _DEFAULTS.items()
    ]


def normalise_agg(name: str) -> str | None:
    """JobMon's name for an aggregation function (``avg`` is accepted for ``mean``), None if unknown."""
    name = AGG_ALIASES.get(name, name)
    return name if name in AGG_FNS else None


def metrics_of(stored: StoredConfig, sample_interval: str) -> list[MetricConfig]:
    """The catalogue: the stored edit, or the defaults; sorted by display name as JobMon does. An edit
    stored before the granularity was served (its Type a category, e.g. "cpu", which JobMon's page reads
    as per-thread data) is served as what every jobpulse series is: per node."""
    if stored.metrics is None:
        metrics = default_metrics(sample_interval)
    else:
        metrics = [
            msgspec.structs.replace(m, Type=GRANULARITY, SeparationKey=m.SeparationKey or "hostname")
            if m.Type != GRANULARITY or not m.SeparationKey
            else m
            for m in msgspec.convert(stored.metrics, list[MetricConfig])
        ]
    return sorted(metrics, key=lambda m: m.DisplayName)


def configuration_of(stored: StoredConfig, sample_interval: str) -> Configuration:
    """The current configuration: stored edits over the defaults; partitions seen in jobs are listed
    with every metric unless configured."""
    metrics = metrics_of(stored, sample_interval)
    partitions: dict[str, PartitionConfig] = (
        msgspec.convert(stored.partitions, dict[str, PartitionConfig])
        if stored.partitions is not None
        else {}
    )
    guids = [m.GUID for m in metrics]
    for name in stored.seen_partitions:
        partitions.setdefault(name, PartitionConfig(Metrics=list(guids)))
    return Configuration(
        Metrics=metrics,
        Partitions=partitions,
        SampleInterval=sample_interval,
        MetricQuantiles=list(METRIC_QUANTILES),
        MetricCategories=list(CATEGORIES),
        RadarChartMetrics=[g for g in RADAR_CHART if g in guids],
    )


def validate(
    metrics: list[MetricConfig] | None, partitions: dict[str, PartitionConfig] | None, current: Configuration
) -> None:
    """Raise CatalogError naming the field when an edit could not be served."""
    effective = metrics if metrics is not None else current.Metrics
    seen: set[str] = set()
    for i, metric in enumerate(metrics or []):
        where = f"Metrics[{i}]"
        if metric.GUID in seen:
            raise CatalogError(f"{where}.GUID", f"duplicate GUID {metric.GUID!r}")
        seen.add(metric.GUID)
        if metric.Measurement not in JOB_SAMPLE_COLUMNS:
            raise CatalogError(
                f"{where}.Measurement",
                f"{metric.Measurement!r} is not a stored metric; one of {list(JOB_SAMPLE_COLUMNS)}",
            )
        if metric.Type not in ("", GRANULARITY):
            raise CatalogError(
                f"{where}.Type",
                f"{metric.Type!r}: jobpulse collects one series per job and node, so the collection "
                f"granularity is {GRANULARITY!r} (categories go in Categories)",
            )
        if normalise_agg(metric.AggFn) is None:
            raise CatalogError(f"{where}.AggFn", f"{metric.AggFn!r} is not one of {list(AGG_FNS)}")
        for fn in metric.AvailableAggFns:
            if normalise_agg(fn) is None:
                raise CatalogError(f"{where}.AvailableAggFns", f"{fn!r} is not one of {list(AGG_FNS)}")
    if metrics is not None and not metrics:
        raise CatalogError("Metrics", "the catalogue cannot be empty")
    guids = {m.GUID for m in effective}
    for name, part in (partitions or {}).items():
        for guid in part.Metrics:
            if guid not in guids:
                raise CatalogError(f"Partitions[{name!r}].Metrics", f"unknown metric GUID {guid!r}")

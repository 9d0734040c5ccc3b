"""Payload types of the job-monitoring API, with JobMon's JSON field names (seed 004).

Field names and units follow Cranken/JobMon's backend (job.JobMetadata, job.JobData,
config.MetricConfig, ...), so clients written for that API work unchanged. msgspec Structs
give the OpenAPI document real schemas and validate request bodies with the field named.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

NameStr = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Text = Annotated[str, msgspec.Meta(max_length=1024)]


class Node(msgspec.Struct):
    Name: str


class JobTag(msgspec.Struct):
    """job.JobTag. On add/remove only Name is required; Type defaults to "user"."""

    Name: NameStr
    Id: int = 0
    Type: Annotated[str, msgspec.Meta(max_length=64)] = "user"
    CreatedBy: Text = ""


class JobMetadataData(msgspec.Struct):
    """job.JobMetadataData: one metric of a finished job as its summary has it (the job list's radar
    chart: Mean / max(MaxPerNode, MaxPerType), Max likewise). ChangePoints: not detected, null."""

    Config: MetricConfig
    Mean: float
    Max: float
    ChangePoints: list[str] | None = None


class JobMetadata(msgspec.Struct):
    """job.JobMetadata; times in seconds since the epoch. StopTime is 0 for a running job in the job
    list and now on its page (GET /api/job), as in JobMon. NodeList is JobMon's: the node names joined
    by ``|`` (its page splits on it); HostList the same nodes as a Slurm hostlist (``n[1-4]``)."""

    Id: int
    UserId: int
    UserName: str
    GroupId: int
    GroupName: str
    ClusterId: str
    NumNodes: int
    NumTasks: int
    TasksPerNode: int
    GPUsPerNode: int
    StartTime: int
    StopTime: int
    IsRunning: bool
    JobName: str
    Account: str
    TTL: int
    Partition: str
    JobScript: str
    ExitCode: int
    Nodes: list[Node]
    Tags: list[JobTag]
    # jobpulse additions (JobMon clients ignore unknown fields)
    State: str
    NodeList: str
    Cpus: int
    # Slurm's own name for the job: "8_1" (array task), "5+1" (het component) or the number
    JobIdString: str = ""
    ArrayJobId: int | None = None
    ArrayTaskId: int | None = None
    HetJobId: int | None = None
    HetJobOffset: int | None = None
    HostList: str = ""
    # The exit status as Slurm shows it, "code:signal" ("3:0", "0:15"; "0:125" is Slurm's OOM mark);
    # "" where no source said. ExitCode is JobMon's one number for it (the code, or 128 + the signal).
    ExitCodeString: str = ""
    # JobMon's Data: the summary's figures per metric; null while running or before the summary exists
    Data: list[JobMetadataData] | None = None


class MetricConfig(msgspec.Struct):
    """config.MetricConfig. Measurement is the stored job_samples column the metric reads."""

    GUID: NameStr
    Measurement: NameStr
    Type: Annotated[str, msgspec.Meta(max_length=64)] = ""
    Categories: list[Text] = msgspec.field(default_factory=list)
    AggFn: str = "mean"
    AvailableAggFns: list[str] = msgspec.field(default_factory=lambda: ["mean", "min", "max", "sum"])
    SampleInterval: str = ""
    Unit: Annotated[str, msgspec.Meta(max_length=32)] = ""
    DisplayName: Text = ""
    FilterFunc: Text = ""
    PostQueryOp: Text = ""
    SeparationKey: Text = ""
    MaxPerNode: float = 0
    MaxPerType: float = 0
    PThreadAggFn: str = ""
    SubMeasurements: list[Text] = msgspec.field(default_factory=list)


class PartitionConfig(msgspec.Struct):
    """config.PartitionConfig (MaxTime in seconds, Metrics = metric GUIDs)."""

    MaxTime: Annotated[int, msgspec.Meta(ge=0)] = 0
    Metrics: list[NameStr] = msgspec.field(default_factory=list)
    VirtualPartitions: dict[NameStr, Any] = msgspec.field(default_factory=dict)


class Configuration(msgspec.Struct):
    """The parts of config.Configuration this API serves and accepts."""

    Metrics: list[MetricConfig] = msgspec.field(default_factory=list)
    Partitions: dict[NameStr, PartitionConfig] = msgspec.field(default_factory=dict)
    SampleInterval: str = ""
    MetricQuantiles: list[str] = msgspec.field(default_factory=list)
    MetricCategories: list[str] = msgspec.field(default_factory=list)
    RadarChartMetrics: list[str] = msgspec.field(default_factory=list)


class ConfigUpdate(msgspec.Struct, forbid_unknown_fields=False):
    """PATCH body: only the parts present (Metrics, Partitions) are replaced."""

    Metrics: list[MetricConfig] | None = None
    Partitions: dict[NameStr, PartitionConfig] | None = None


class JobListConfig(msgspec.Struct):
    RadarChartMetrics: list[str]
    Partitions: dict[str, PartitionConfig]
    Tags: list[JobTag]


class JobListData(msgspec.Struct):
    """job.JobListData plus the pagination figures (Total matches the filter, before Limit/Offset)."""

    Jobs: list[JobMetadata]
    Config: JobListConfig
    Total: int
    Limit: int
    Offset: int


class MetricData(msgspec.Struct):
    """job.MetricData: Data maps node -> points {"_time": RFC 3339, "_value", "hostname"};
    RawData (raw=true only) is the same data as CSV."""

    Config: MetricConfig
    Data: dict[str, list[dict[str, Any]]]
    RawData: str = ""


class QuantileData(msgspec.Struct):
    """job.QuantileData: Data maps each quantile ("0.25") -> points {"_time", "_value", "_field" (the
    quantile), "_measurement"}: at each time step, that quantile of the nodes' values."""

    Config: MetricConfig
    Quantiles: list[str]
    Data: dict[str, list[dict[str, Any]]]
    RawData: str = ""


class LiveMessage(msgspec.Struct):
    """A frame of JobMon's live protocol (WS /api/live/{id}): Type 2 answers a load request (Type 1),
    Type 3 pushes the latest samples."""

    Type: int
    MetricData: list[MetricData]


class LiveLoadRequest(msgspec.Struct, forbid_unknown_fields=False):
    """What JobMon's live page sends: ``{"StartTime": s, "StopTime": s, "Type": 1}``."""

    Type: int
    StartTime: float = 0
    StopTime: float = 0


class StepSummary(msgspec.Struct):
    """What one Slurm step (batch, extern, 0, 1, ...) of the run used; null where not measured."""

    Step: str
    Nodes: list[str]
    FirstSample: float | None
    LastSample: float | None
    Samples: int
    CpuSeconds: float | None
    MemPeakBytes: float | None
    IoReadBytes: float | None
    IoWriteBytes: float | None
    OomKills: float | None


class JobData(msgspec.Struct):
    """job.JobData plus Summary/Findings (issue 5; null when not computed) and the tags. MetricData is
    null when the job has no data (JobMon's page then says so); QuantileData null while the job runs
    or when it has no data, as JobMon's backend leaves them."""

    Metadata: JobMetadata
    MetricData: list[MetricData] | None
    QuantileData: list[QuantileData] | None
    SampleInterval: float
    SampleIntervals: list[float]
    Tags: list[JobTag]
    Summary: dict[str, Any] | None = None
    Findings: list[dict[str, Any]] = msgspec.field(default_factory=list)
    Steps: list[StepSummary] = msgspec.field(default_factory=list)
    Step: str = ""  # the step MetricData shows ("" = the whole job)

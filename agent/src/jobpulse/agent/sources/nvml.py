"""GPU metrics through NVML (``import pynvml`` from nvidia-ml-py), initialised once.

Every device (and every MIG instance of a device in MIG mode) is sampled each
tick: utilization, memory used/total, power, temperature, SM clock. Calls a
device does not support (NVMLError_NotSupported: MIG instances have no power
or clocks of their own) are remembered per (device, call) and not repeated.
The expensive calls run less often than the tick: the running-process list
every ``process_every`` ticks, total energy every ``energy_every`` ticks (NaN
in between: not measured this tick). No NVML library or no GPU: ``available``
is False, nothing is reported, and that is logged once. Readings and device
descriptions are plain dataclasses; ``wire.py`` turns them into protobuf.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from jobpulse.common.timeutil import now_ms

log = logging.getLogger(__name__)
NAN = math.nan
T = TypeVar("T")


@dataclass(slots=True)
class GpuReading:
    """One device (or MIG instance) at one instant; NaN = not measured."""

    uuid: str
    time_ms: int = 0
    job_id: str = ""
    util_percent: float = NAN
    mem_util_percent: float = NAN
    mem_used_bytes: float = NAN
    mem_total_bytes: float = NAN
    power_watts: float = NAN
    temperature_c: float = NAN
    sm_clock_mhz: float = NAN
    energy_joules: float = NAN


@dataclass(frozen=True, slots=True)
class GpuDeviceInfo:
    """What the collector is told once about a device (or MIG instance), in the hello."""

    uuid: str  # GPU-... or MIG-...
    name: str
    memory_total_bytes: int
    pci_bus_id: str
    index: int  # NVML index (a MIG instance: its parent's)
    parent_uuid: str = ""  # set for MIG instances


@dataclass(frozen=True, slots=True)
class GpuProcess:
    """A compute process NVML saw on a device; used_bytes NaN when the driver does not say."""

    pid: int
    uuid: str
    used_bytes: float


@dataclass
class _Device:
    handle: Any
    info: GpuDeviceInfo
    mig: bool
    has_mig: bool = False  # a parent in MIG mode: its processes are listed per instance


def nvml_library_present() -> bool:
    """Whether the driver's NVML library can be loaded, checked before importing pynvml.

    Importing pynvml costs about 12 MB of RSS (its many ctypes structures), which a
    CPU-only node should not pay for nothing.
    """
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return True


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


class NvmlSource:
    """The node's GPUs. ``start`` once; ``sample`` every tick."""

    def __init__(self, process_every: int = 6, energy_every: int = 6) -> None:
        self.process_every = max(1, process_every)
        self.energy_every = max(1, energy_every)
        self.available = False
        self.devices: list[_Device] = []
        self.processes: list[GpuProcess] | None = None  # None until the first process listing
        self.processes_fresh = False  # True on ticks that refreshed the list
        self._nvml: Any = None
        self._started = False
        self._unsupported: set[tuple[str, str]] = set()
        self._tick = 0

    def start(self) -> bool:
        """Initialise NVML and list devices; False (logged once) when there is no NVML or no GPU."""
        if self._started:
            return self.available
        self._started = True
        if not nvml_library_present():
            log.info("no GPU metrics on this node: no NVML library (libnvidia-ml.so.1)")
            return False
        try:
            import pynvml

            self._nvml = pynvml
            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
        except Exception as exc:  # ImportError, NVMLError_LibraryNotFound, DriverNotLoaded ...
            log.info("no GPU metrics on this node: NVML unavailable (%s)", exc)
            return False
        for index in range(count):
            self._add_device(index)
        if not self.devices:
            log.info("no GPU metrics on this node: NVML found no device")
            return False
        self.available = True
        log.info("NVML: %d GPU(s) / MIG instance(s)", len(self.devices))
        return True

    def _add_device(self, index: int) -> None:
        nv = self._nvml
        try:
            handle = nv.nvmlDeviceGetHandleByIndex(index)
            uuid = _text(nv.nvmlDeviceGetUUID(handle))
        except nv.NVMLError as exc:
            log.warning("GPU %d: skipped, NVML cannot identify it (%s)", index, exc)
            return
        name = _text(self._call(uuid, "name", nv.nvmlDeviceGetName, handle, default=""))
        memory = self._call(uuid, "memory", nv.nvmlDeviceGetMemoryInfo, handle, default=None)
        pci = self._call(uuid, "pci", nv.nvmlDeviceGetPciInfo, handle, default=None)
        info = GpuDeviceInfo(
            uuid=uuid,
            name=name,
            memory_total_bytes=int(memory.total) if memory is not None else 0,
            pci_bus_id=_text(pci.busId) if pci is not None else "",
            index=index,
        )
        parent = _Device(handle, info, mig=False)
        self.devices.append(parent)
        mode = self._call(uuid, "mig_mode", nv.nvmlDeviceGetMigMode, handle, default=None)
        if not mode or mode[0] != nv.NVML_DEVICE_MIG_ENABLE:
            return
        parent.has_mig = True
        for slot in range(nv.nvmlDeviceGetMaxMigDeviceCount(handle)):
            try:
                mig = nv.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
                mig_uuid = _text(nv.nvmlDeviceGetUUID(mig))
            except nv.NVMLError:  # NotFound: an empty slot
                continue
            mig_name = _text(self._call(mig_uuid, "name", nv.nvmlDeviceGetName, mig, default=info.name))
            mig_memory = self._call(mig_uuid, "memory", nv.nvmlDeviceGetMemoryInfo, mig, default=None)
            mig_info = GpuDeviceInfo(
                uuid=mig_uuid,
                name=mig_name,
                memory_total_bytes=int(mig_memory.total) if mig_memory is not None else 0,
                pci_bus_id=info.pci_bus_id,
                index=index,
                parent_uuid=uuid,
            )
            self.devices.append(_Device(mig, mig_info, mig=True))

    def _call(self, uuid: str, name: str, fn: Callable[..., T], *args: Any, default: T) -> T:
        """One NVML call; NotSupported is remembered so the call is skipped from then on."""
        if (uuid, name) in self._unsupported:
            return default
        try:
            return fn(*args)
        except self._nvml.NVMLError_NotSupported:
            self._unsupported.add((uuid, name))
            log.debug("GPU %s does not support %s", uuid, name)
        except self._nvml.NVMLError as exc:
            log.debug("GPU %s: %s failed: %s", uuid, name, exc)
        return default

    def infos(self) -> list[GpuDeviceInfo]:
        """The devices as the hello lists them (``wire.gpu_infos`` encodes them)."""
        return [device.info for device in self.devices]

    def resolve(self, ref: str) -> str | None:
        """A job's GPU reference -> UUID: UUIDs pass through, indices are NVML indices (never /dev minors)."""
        ref = ref.strip()
        if ref.startswith(("GPU-", "MIG-")):
            return ref
        if ref.isdigit():
            for device in self.devices:
                if not device.mig and device.info.index == int(ref):
                    return device.info.uuid
        return None

    def sample(self) -> list[GpuReading]:
        """Every device now; refreshes ``processes`` when its interval has come."""
        if not self.available:
            return []
        nv = self._nvml
        with_energy = self._tick % self.energy_every == 0
        self.processes_fresh = self._tick % self.process_every == 0
        self._tick += 1
        stamp = now_ms()
        readings = []
        processes: list[GpuProcess] = []
        for device in self.devices:
            uuid, handle = device.info.uuid, device.handle
            reading = GpuReading(
                uuid=uuid, time_ms=stamp, mem_total_bytes=float(device.info.memory_total_bytes)
            )
            util = self._call(uuid, "util", nv.nvmlDeviceGetUtilizationRates, handle, default=None)
            if util is not None:
                reading.util_percent = float(util.gpu)
                reading.mem_util_percent = float(util.memory)
            memory = self._call(uuid, "memory", nv.nvmlDeviceGetMemoryInfo, handle, default=None)
            if memory is not None:
                reading.mem_used_bytes = float(memory.used)
                reading.mem_total_bytes = float(memory.total)
            power = self._call(uuid, "power", nv.nvmlDeviceGetPowerUsage, handle, default=None)
            reading.power_watts = power / 1000.0 if power is not None else NAN
            temp = self._call(
                uuid,
                "temperature",
                nv.nvmlDeviceGetTemperature,
                handle,
                nv.NVML_TEMPERATURE_GPU,
                default=None,
            )
            reading.temperature_c = float(temp) if temp is not None else NAN
            clock = self._call(
                uuid, "sm_clock", nv.nvmlDeviceGetClockInfo, handle, nv.NVML_CLOCK_SM, default=None
            )
            reading.sm_clock_mhz = float(clock) if clock is not None else NAN
            if with_energy:
                energy = self._call(
                    uuid, "energy", nv.nvmlDeviceGetTotalEnergyConsumption, handle, default=None
                )
                reading.energy_joules = energy / 1000.0 if energy is not None else NAN
            if self.processes_fresh and not device.has_mig:
                procs: list[Any] = self._call(
                    uuid, "processes", nv.nvmlDeviceGetComputeRunningProcesses, handle, default=[]
                )
                for proc in procs:
                    used = getattr(proc, "usedGpuMemory", None)
                    processes.append(
                        GpuProcess(int(proc.pid), uuid, float(used) if used is not None else NAN)
                    )
            readings.append(reading)
        if self.processes_fresh:
            self.processes = processes
        return readings

    def close(self) -> None:
        if self.available:
            with contextlib.suppress(self._nvml.NVMLError):
                self._nvml.nvmlShutdown()
            self.available = False

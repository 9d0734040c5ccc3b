"""pynvml mocked at its call boundary with what a real H200 node answers.

Values are from the H200 capture (tests/fixtures/v2, /work/shared/cgroup-samples
README): 143771 MiB per GPU, a PyTorch process holding 1002 MiB. Only the
functions are replaced; pynvml's own NVMLError classes are raised, so the
agent's error handling is exercised as on a real node.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pynvml
import pytest
from jobpulse.agent.sources import nvml as nvml_source

MIB = 1024 * 1024
H200_TOTAL = 143771 * MIB


@dataclass
class FakeDevice:
    uuid: str
    index: int = 0
    name: str = "NVIDIA H200"
    total: int = H200_TOTAL
    used: int = 1530 * MIB
    util: int = 87
    mem_util: int = 41
    power_mw: int = 412_345
    temp: int = 48
    sm_clock: int = 1980
    energy_mj: int = 9_876_543_210
    bus: str = "00000000:19:00.0"
    processes: list[tuple[int, int | None]] = field(default_factory=list)
    unsupported: set[str] = field(default_factory=set)
    migs: list[FakeDevice] = field(default_factory=list)
    is_mig: bool = False


class FakeNvml:
    def __init__(self, devices: list[FakeDevice]) -> None:
        self.devices = devices
        self.calls: Counter[tuple[str, str]] = Counter()

    def _check(self, device: FakeDevice, call: str) -> None:
        self.calls[(device.uuid, call)] += 1
        if call in device.unsupported:
            raise pynvml.NVMLError_NotSupported()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def handle(index: int) -> FakeDevice:
            return self.devices[index]

        def util(d: FakeDevice) -> Any:
            self._check(d, "util")
            return SimpleNamespace(gpu=d.util, memory=d.mem_util)

        def memory(d: FakeDevice) -> Any:
            self._check(d, "memory")
            return SimpleNamespace(total=d.total, used=d.used, free=d.total - d.used)

        def power(d: FakeDevice) -> int:
            self._check(d, "power")
            return d.power_mw

        def temperature(d: FakeDevice, sensor: int) -> int:
            assert sensor == pynvml.NVML_TEMPERATURE_GPU
            self._check(d, "temperature")
            return d.temp

        def clock(d: FakeDevice, kind: int) -> int:
            assert kind == pynvml.NVML_CLOCK_SM
            self._check(d, "clock")
            return d.sm_clock

        def energy(d: FakeDevice) -> int:
            self._check(d, "energy")
            return d.energy_mj

        def processes(d: FakeDevice) -> list[Any]:
            self._check(d, "processes")
            return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in d.processes]

        def mig_mode(d: FakeDevice) -> list[int]:
            self._check(d, "mig_mode")
            return [1, 1] if d.migs else [0, 0]

        def mig_handle(d: FakeDevice, slot: int) -> FakeDevice:
            if slot >= len(d.migs):
                raise pynvml.NVMLError_NotFound()
            return d.migs[slot]

        def pci(d: FakeDevice) -> Any:
            return SimpleNamespace(busId=d.bus)

        fns: dict[str, Any] = {
            "nvmlInit": lambda: None,
            "nvmlShutdown": lambda: None,
            "nvmlDeviceGetCount": lambda: len(self.devices),
            "nvmlDeviceGetHandleByIndex": handle,
            "nvmlDeviceGetUUID": lambda d: d.uuid,
            "nvmlDeviceGetName": lambda d: d.name,
            "nvmlDeviceGetPciInfo": pci,
            "nvmlDeviceGetMemoryInfo": memory,
            "nvmlDeviceGetUtilizationRates": util,
            "nvmlDeviceGetPowerUsage": power,
            "nvmlDeviceGetTemperature": temperature,
            "nvmlDeviceGetClockInfo": clock,
            "nvmlDeviceGetTotalEnergyConsumption": energy,
            "nvmlDeviceGetComputeRunningProcesses": processes,
            "nvmlDeviceGetMigMode": mig_mode,
            "nvmlDeviceGetMaxMigDeviceCount": lambda d: 7,
            "nvmlDeviceGetMigDeviceHandleByIndex": mig_handle,
        }
        for name, fn in fns.items():
            monkeypatch.setattr(pynvml, name, fn)
        # The driver library itself is what this machine lacks; everything above it is pynvml's.
        monkeypatch.setattr(nvml_source, "nvml_library_present", lambda: True)


MIG_UNSUPPORTED = {"util", "power", "temperature", "clock", "energy"}


def h200_node() -> list[FakeDevice]:
    """GPU 0 busy with a PyTorch process, GPU 1 in MIG mode (two 1g.18gb), GPU 2 without power readings."""
    gpu0 = FakeDevice("GPU-5f0c3a1e-8d2b-4c7e-9a61-0b3f2d7e4c11", 0, processes=[(4242, 1002 * MIB)])
    mig_a = FakeDevice(
        "MIG-1b7e2c44-90aa-5d1f-8e3c-6f2a9b0d1e21",
        1,
        name="NVIDIA H200 MIG 1g.18gb",
        total=17920 * MIB,
        used=1050 * MIB,
        processes=[(5151, 1002 * MIB)],
        unsupported=MIG_UNSUPPORTED,
        is_mig=True,
    )
    mig_b = FakeDevice(
        "MIG-2c8f3d55-01bb-6e2a-9f4d-7a3bac1e2f32",
        1,
        name="NVIDIA H200 MIG 1g.18gb",
        total=17920 * MIB,
        used=13 * MIB,
        unsupported=MIG_UNSUPPORTED,
        is_mig=True,
    )
    gpu1 = FakeDevice(
        "GPU-7a1d9e02-3b4c-4d5e-8f60-1a2b3c4d5e62",
        1,
        bus="00000000:3B:00.0",
        used=1063 * MIB,
        power_mw=118_000,
        temp=33,
        sm_clock=1755,
        unsupported={"util"},  # a parent in MIG mode has no utilization of its own
        migs=[mig_a, mig_b],
    )
    gpu2 = FakeDevice(
        "GPU-9c3e5f13-4d5e-4f60-9a71-2b3c4d5e6f73",
        2,
        bus="00000000:4C:00.0",
        used=4 * MIB,
        util=0,
        mem_util=0,
        temp=29,
        sm_clock=345,
        unsupported={"power", "energy"},
    )
    return [gpu0, gpu1, gpu2]

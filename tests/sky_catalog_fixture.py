"""A tiny hand-placed SkyPilot AWS catalog (vms.csv, schema v8) under an isolated HOME.

SkyPilot never refreshes a catalog file that has no `.meta/*.md5` next to it (it counts as modified by
the user), so nothing is downloaded. On-demand prices are AWS's published us-east-1 Linux prices;
spot prices are illustrative.
"""

from __future__ import annotations

import os
from pathlib import Path

HEADER = (
    "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,"
    "AvailabilityZone,Arch,LocalDiskType,NVMeSupported,LocalDiskSize,LocalDiskCount,MaximumEfaInterfaces"
)
ROWS = [
    ("c7i.xlarge", 4, 8.0, 0.1785, 0.0704, "x86_64"),
    ("c7g.xlarge", 4, 8.0, 0.1450, 0.0593, "arm64"),
]
ZONES = ["use1-az1", "use1-az2"]


def catalog_csv() -> str:
    lines = [HEADER]
    for itype, vcpus, mem, price, spot, arch in ROWS:
        for zone in ZONES:
            lines.append(f"{itype},,,{vcpus},{mem},,{price},{spot},us-east-1,{zone},{arch},,,,,0")
    return "\n".join(lines) + "\n"


def seed_catalog(home: Path, schema: str = "v8") -> Path:
    """Write ~/.sky/catalogs/<schema>/aws/vms.csv under ``home``; returns its path."""
    path = home / ".sky" / "catalogs" / schema / "aws" / "vms.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(catalog_csv())
    return path


def isolated_env(home: Path) -> dict[str, str]:
    """Environment for a subprocess that imports sky with ``home`` as its only state."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKYPILOT", "SKY_", "AWS_"))}
    env.update(
        {
            "HOME": str(home),
            "AWS_CONFIG_FILE": str(home / "nonexistent-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "nonexistent-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "SKYPILOT_DISABLE_USAGE_COLLECTION": "1",
            "SKYPILOT_DEBUG": "0",
        }
    )
    return env

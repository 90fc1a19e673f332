"""Which other architectures this host can check under emulation (cross toolchain + qemu-user), for the local
executor: the driver (sky/emulate.py) builds the variants for that arch and runs their checks under qemu;
nothing is timed or simulated there. Debian/Ubuntu: `apt-get install gcc-aarch64-linux-gnu
g++-aarch64-linux-gnu qemu-user` (arm on an x86 host), `gcc-x86-64-linux-gnu g++-x86-64-linux-gnu qemu-user`
(x86 on an ARM host)."""

from __future__ import annotations

import os
import shutil

TARGETS = {
    "arm": {"triple": "aarch64-linux-gnu", "qemu": "qemu-aarch64"},
    "x86": {"triple": "x86_64-linux-gnu", "qemu": "qemu-x86_64"},
}


def packages(arch: str) -> str:
    t = TARGETS.get(arch)
    if not t:
        return ""
    deb = t["triple"].replace("_", "-")
    return f"gcc-{deb} g++-{deb} qemu-user"


def probe(arch: str) -> dict[str, str] | None:
    """The spec's `emulate` for `arch` when the cross compilers, their sysroot and qemu-user are here."""
    t = TARGETS.get(arch)
    if not t:
        return None
    sysroot = f"/usr/{t['triple']}"
    have = all(shutil.which(f"{t['triple']}-{c}") for c in ("gcc", "g++")) and shutil.which(t["qemu"])
    if not have or not os.path.isdir(sysroot):
        return None
    return {"arch": arch, "triple": t["triple"], "qemu": t["qemu"], "sysroot": sysroot, "emulator": t["qemu"]}


def missing(arch: str) -> str:
    """Why `arch` cannot be checked under emulation here, in words (with the packages that would do it)."""
    if arch not in TARGETS:
        return f"no emulation known for {arch}"
    if probe(arch):
        return "emulation available"
    return f"its correctness is not checked under emulation either (install {packages(arch)} to do it)"

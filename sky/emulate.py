"""Correctness under emulation (stdlib only): a variant built for another arch with a cross compiler and its
checks run under qemu-user, so a broken NEON path is caught on an x86 host before an ARM VM is paid for.

The spec's ``emulate`` says what to use: ``{"arch", "triple", "qemu", "sysroot"}`` (bot/experiments/
emulation.py probes the host). The driver then builds with ``<triple>-gcc``/``g++`` (``CC``/``CXX`` and a
CMake toolchain file in ``CMAKE_TOOLCHAIN_FILE``), runs every command whose program is an ELF file of the
target's machine type under ``qemu-<arch> -L <sysroot>``, and neither times nor simulates anything: timing
and the simulated cost need the real machine.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

# ELF e_machine per arch name the bot uses
MACHINES = {"arm": 0xB7, "aarch64": 0xB7, "x86": 0x3E, "x86_64": 0x3E}
PROCESSORS = {"arm": "aarch64", "aarch64": "aarch64", "x86": "x86_64", "x86_64": "x86_64"}


def elf_machine(path: Path) -> int | None:
    """e_machine of an ELF file, None for anything else."""
    try:
        with open(path, "rb") as f:
            head = f.read(20)
    except OSError:
        return None
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    return int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")


def env(spec_emulate: dict, workdir: Path) -> dict:
    """Build environment for the target: cross compilers and a CMake toolchain file."""
    triple = spec_emulate["triple"]
    cc, cxx = shutil.which(f"{triple}-gcc"), shutil.which(f"{triple}-g++")
    if not cc or not cxx:
        raise RuntimeError(f"cross compiler {triple}-gcc/g++ not found on PATH")
    toolchain = Path(workdir).resolve() / f"toolchain-{triple}.cmake"
    proc = PROCESSORS.get(str(spec_emulate.get("arch")), "aarch64")
    toolchain.write_text(
        "set(CMAKE_SYSTEM_NAME Linux)\n"
        f"set(CMAKE_SYSTEM_PROCESSOR {proc})\n"
        f'set(CMAKE_C_COMPILER "{cc}")\n'
        f'set(CMAKE_CXX_COMPILER "{cxx}")\n'
        f'set(CMAKE_FIND_ROOT_PATH "{spec_emulate.get("sysroot") or ""}")\n'
        "set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)\n"
        "set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)\n"
        "set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)\n"
        f'set(CMAKE_CROSSCOMPILING_EMULATOR "{shutil.which(spec_emulate["qemu"]) or spec_emulate["qemu"]}'
        f';-L;{spec_emulate.get("sysroot") or "/"}")\n'
    )
    return {
        "CC": cc,
        "CXX": cxx,
        "CMAKE_TOOLCHAIN_FILE": str(toolchain),
        "QEMU_LD_PREFIX": str(spec_emulate.get("sysroot") or ""),
        "AUTORESEARCH_EMULATED_ARCH": str(spec_emulate.get("arch") or ""),
    }


def _program(word: str, cwd: Path, path_env: str) -> Path | None:
    if "/" in word:
        p = Path(word) if os.path.isabs(word) else Path(cwd) / word
        return p if p.is_file() else None
    found = shutil.which(word, path=path_env)
    return Path(found) if found else None


def wrap(argv: list, cwd: Path, spec_emulate: dict, path_env: str = "") -> list:
    """argv with the emulator in front when its program is an ELF of the target arch. ``bash -c <cmd>``:
    the command's first program is wrapped (a compound command's later programs are not: checks are run
    one program per command, as the project configs write them)."""
    target = MACHINES.get(str(spec_emulate.get("arch")), 0xB7)
    qemu = [spec_emulate["qemu"], "-L", str(spec_emulate.get("sysroot") or "/")]
    if len(argv) == 3 and argv[:2] == ["bash", "-c"]:
        try:
            words = shlex.split(argv[2])
        except ValueError:
            return argv
        if words:
            prog = _program(words[0], cwd, path_env)
            if prog is not None and elf_machine(prog) == target:
                return ["bash", "-c", " ".join(shlex.quote(w) for w in qemu) + " " + argv[2]]
        return argv
    prog = _program(str(argv[0]), cwd, path_env) if argv else None
    if prog is not None and elf_machine(prog) == target:
        return [*qemu, *argv]
    # `taskset -c 0 <prog>` and the like: wrap the first target ELF among the words
    for i, word in enumerate(argv[1:], start=1):
        prog = _program(str(word), cwd, path_env)
        if prog is not None and elf_machine(prog) == target:
            return [*argv[:i], *qemu, *argv[i:]]
    return argv

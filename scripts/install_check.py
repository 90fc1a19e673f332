"""A real install, checked: a fresh venv, `pip install '<repo>[aws]'` (not editable), then from another
directory the installed bot renders and validates both default architectures' tasks with the real SkyPilot
SDK, finds its driver files and prompts inside the installed package, and SkyPilot's AWS adaptor imports (the
extra is there).

    python scripts/install_check.py [--extra aws] [--keep DIR]

Needs a package index (PyPI or a mirror) for the dependencies; a minute or more on a small machine. SkyPilot's
catalog is a hand-placed one under an isolated HOME (tests/sky_catalog_fixture.py), so nothing is downloaded
from a cloud and no credentials are needed. Prints one line per architecture and exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from install_probe import INSTALLED  # noqa: E402  (what the tests ask an unpacked wheel, too)
from sky_catalog_fixture import isolated_env, seed_catalog  # noqa: E402  (the tests' offline catalog)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="install the bot into a fresh venv and check the cloud path")
    parser.add_argument("--extra", default="aws", help="the cloud extra to install (default aws)")
    parser.add_argument("--keep", help="build the venv here and keep it (default: a temporary folder)")
    args = parser.parse_args(argv[1:])
    with tempfile.TemporaryDirectory(prefix="install-check-") as tmp:
        base = Path(args.keep) if args.keep else Path(tmp)
        venv, home, elsewhere = base / "venv", base / "home", base / "elsewhere"
        elsewhere.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        py = venv / "bin" / "python"
        pip = subprocess.run(
            [str(py), "-m", "pip", "install", "-q", f"{ROOT}[{args.extra}]"], capture_output=True, text=True
        )
        if pip.returncode != 0:
            print(f"FAIL pip install '.[{args.extra}]':\n{pip.stderr[-3000:]}")
            return 1
        took = time.monotonic() - started
        print(f"pip install '.[{args.extra}]' (not editable) into a fresh venv: {took:.0f} s")
        seed_catalog(home)
        env = isolated_env(home)
        env.pop("PYTHONPATH", None)
        proc = subprocess.run(
            [str(py), "-c", INSTALLED, str(base / "files")],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode != 0:
            print(f"FAIL the installed bot, run from {elsewhere}:\n{proc.stderr[-3000:]}")
            return 1
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        site = str(venv)
        problems = []
        if not out["bot"].startswith(site) or not out["sky_dir"].startswith(site):
            problems.append(f"bot or its sky/ files not from the venv: {out['bot']}, {out['sky_dir']}")
        if not out["prompts"].startswith(site):
            problems.append(f"prompts not from the venv: {out['prompts']}")
        if not out["sky"].startswith(site) or "/bot/" in out["sky"]:
            problems.append(f"`import sky` is not SkyPilot from the venv: {out['sky']}")
        print(f"bot:      {out['bot']}\nsky/:     {out['sky_dir']}")
        print(f"prompts:  {out['prompts']}\nSkyPilot: {out['sky']}")
        for arch, (cloud, itype, region, files) in sorted(out["archs"].items()):
            print(
                f"{arch:<5} {cloud} {itype} {region}: task rendered and validated; shipped {', '.join(files)}"
            )
            if "driver.py" not in files or "spec.json" not in files:
                problems.append(f"{arch}: driver files missing from the task's workdir")
        if not out["aws_adaptor"]:
            problems.append(
                f"SkyPilot's AWS adaptor or boto3 does not import: the [{args.extra}] extra is missing"
            )
        for p in problems:
            print("FAIL " + p)
        print("ok" if not problems else f"{len(problems)} problem(s)")
        return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

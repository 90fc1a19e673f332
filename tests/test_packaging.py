"""What a non-editable install ships: the wheel carries sky/ and prompts/ as bot/_data/..., never a top-level
`sky` (SkyPilot's package), and the installed bot finds them and renders valid tasks with the real SkyPilot.

The wheel is built without build isolation from a copy of the sources (about 2 s, offline). Its contents are
unpacked to a folder that stands in for site-packages (a pure-python wheel installs exactly those files); the
real `pip install '.[aws]'` into a fresh venv is scripts/install_check.py (needs a package index).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from install_probe import INSTALLED
from sky_catalog_fixture import isolated_env, seed_catalog

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "bot", "sky", "prompts", "deploy")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "_data"))
        else:
            shutil.copy2(path, src / name)
    dist = src / "dist"
    for kind in ("wheel", "sdist"):  # one process each: setuptools keeps global state between builds
        code = f"import sys; from setuptools import build_meta as b; b.build_{kind}(sys.argv[1])"
        proc = subprocess.run(
            [sys.executable, "-c", code, str(dist)], cwd=src, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,), (sdist,) = dist.glob("*.whl"), dist.glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


def test_wheel_ships_driver_and_prompts_as_package_data(built: dict[str, Path]) -> None:
    with zipfile.ZipFile(built["wheel"]) as zf:
        names = set(zf.namelist())
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(zf.read(metadata).decode())
    for f in sorted(REPO.joinpath("sky").iterdir()):
        if f.suffix in (".py", ".yaml"):
            assert f"bot/_data/sky/{f.name}" in names, f.name
    assert {
        "bot/_data/sky/driver.py",
        "bot/_data/sky/llamacpp.py",
        "bot/_data/sky/make_model.py",
        "bot/_data/sky/pathglob.py",
        "bot/_data/sky/gitrun.py",
        "bot/_data/sky/bench.yaml",
    } <= names
    assert {f"bot/_data/prompts/{p.name}" for p in REPO.joinpath("prompts").glob("*.md")} <= names
    assert "bot/_data/deploy/app-manifest.json" in names  # `app create` reads it
    assert "bot/_data/deploy/gunicorn.conf.py" in names  # `serve` runs gunicorn with it
    assert "bot/resources.py" in names and "bot/experiments/skypilot_exec.py" in names
    # the status pages' templates (bot/web.py renders them from the installed package)
    assert {f"bot/templates/{p.name}" for p in REPO.joinpath("bot", "templates").glob("*.html")} <= names
    assert "bot/templates/run.html" in names
    tops = {n.split("/", 1)[0] for n in names}
    assert "sky" not in tops and "prompts" not in tops, tops  # never clobber SkyPilot's `sky`
    extras = set(meta.get_all("Provides-Extra"))
    assert {"aws", "gcp", "azure", "kubernetes"} <= extras
    requires = meta.get_all("Requires-Dist")
    for cloud in ("aws", "gcp", "azure", "kubernetes"):
        assert any(r.startswith(f"skypilot[{cloud}]") and f'extra == "{cloud}"' in r for r in requires), cloud


def test_sdist_carries_the_folders_the_wheel_maps(built: dict[str, Path]) -> None:
    with tarfile.open(built["sdist"]) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    assert {"setup.py", "sky/driver.py", "sky/bench.yaml", "sky/llamacpp.py", "prompts/dossier.md"} <= names
    assert "bot/templates/run.html" in names


def test_unpacked_wheel_renders_and_validates_default_tasks_from_another_dir(
    built: dict[str, Path], tmp_path: Path
) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(built["wheel"]) as zf:
        zf.extractall(site)
    home = tmp_path / "home"
    seed_catalog(home)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = isolated_env(home)
    env["PYTHONPATH"] = str(site)  # then the venv's site-packages (SkyPilot); the checkout is not on the path
    proc = subprocess.run(
        [sys.executable, "-c", INSTALLED, str(tmp_path / "files")],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["bot"] == str(site / "bot" / "__init__.py")
    assert out["sky_dir"] == str(site / "bot" / "_data" / "sky")
    assert out["prompts"] == str(site / "bot" / "_data" / "prompts") and out["rendered"].strip()
    assert out["pathglob"] == [str(site / "bot" / "_data" / "sky" / "pathglob.py"), True]
    assert out["gitrun"] == str(site / "bot" / "_data" / "sky" / "gitrun.py")
    assert not out["sky"].startswith(str(site)) and out["sky"].endswith("sky/__init__.py")
    assert out["archs"]["x86"][:3] == ["AWS", "c7i.xlarge", "us-east-1"]
    assert out["archs"]["arm"][:3] == ["AWS", "c7g.xlarge", "us-east-1"]
    for arch in ("x86", "arm"):
        names = {"driver.py", "gitrun.py", "pathglob.py", "llamacpp.py", "make_model.py", "spec.json"}
        assert names <= set(out["archs"][arch][3])


def test_checkout_sky_folder_never_shadows_skypilot(tmp_path: Path) -> None:
    """With the checkout first on sys.path (pytest, `python -m`), `import sky` is SkyPilot, and the bot's
    files resolve to the checkout's folders."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import sky, bot.resources as r; "
        "print(sky.__file__); print(r.sky_dir()); print(r.prompts_dir())"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(REPO)], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    sky_file, sky_dir, prompts = proc.stdout.strip().splitlines()[-3:]
    assert sky_file.endswith("sky/__init__.py") and not sky_file.startswith(str(REPO / "sky"))
    assert Path(sky_dir) == REPO / "sky" and Path(prompts) == REPO / "prompts"


def test_missing_data_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot import resources

    monkeypatch.setattr(resources, "_candidates", lambda name: [tmp_path / "_data" / name, tmp_path / name])
    (tmp_path / "sky").mkdir()
    (tmp_path / "sky" / "__init__.py").write_text("")  # a `sky` folder that is not ours (SkyPilot's package)
    with pytest.raises(resources.MissingData, match=r"sky/ files are missing .*pip install"):
        resources.sky_dir()


def test_sky_namespace_folder_is_refused_with_the_fix(tmp_path: Path) -> None:
    """Without SkyPilot, `import sky` would find a checkout's sky/ folder as a namespace package."""
    (tmp_path / "sky").mkdir()
    (tmp_path / "sky" / "driver.py").write_text("")
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; import bot.resources as r\n"
        "try:\n    r.skypilot()\nexcept ImportError as e:\n    print(e)"
    )
    # -S: no site-packages, so no SkyPilot; the folder is all `import sky` can find
    proc = subprocess.run(
        [sys.executable, "-S", "-c", code, str(tmp_path), str(REPO)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "instead of SkyPilot: pip install 'autoresearch-bot[aws]'" in proc.stdout

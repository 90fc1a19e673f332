"""What an installed bot is asked, run as `python -c INSTALLED <files dir>` by an interpreter that sees the
installed package (not the checkout): where bot, its shipped sky/ files, prompts, the shared
pathglob/gitrun modules and SkyPilot come from, both default architectures' tasks rendered and validated
with the real SkyPilot, and whether the cloud extra's AWS adaptor imports. Prints one JSON line. Used by
tests/test_packaging.py (an unpacked wheel) and scripts/install_check.py (a real `pip install '.[aws]'`).
"""

INSTALLED = """
import json, sys
from pathlib import Path
import bot, sky
try:  # the cloud extra (`pip install '.[aws]'`): SkyPilot's AWS adaptor and boto3
    from sky.adaptors import aws
    import boto3
    aws_adaptor = True
except ImportError:
    aws_adaptor = False
from bot.agent.llm import LLM
from bot.config import Settings
from bot.experiments import tasks
from bot.experiments.skypilot_exec import build_task
from bot import pathglob
files = Path(sys.argv[1])
out = {"bot": bot.__file__, "sky": sky.__file__, "sky_dir": str(tasks.SKY_DIR), "archs": {},
       "pathglob": [sys.modules["autoresearch_sky_pathglob"].__file__, pathglob.protected("b/a", ["b"])],
       "gitrun": sys.modules["autoresearch_sky_gitrun"].__file__, "aws_adaptor": aws_adaptor}
spec = {"schema": 1, "run_id": 4, "seed": 1, "source": {"url": "https://example.com/o/r.git"},
        "baseline": {"name": "baseline", "sha": "a" * 40}, "candidates": [], "project": {"preset": "generic"}}
for arch, cfg in Settings().architectures.items():
    shipped = tasks.write_batch_files(dict(spec, arch=arch), files / arch)
    config = tasks.render_task(dict(spec, arch=arch), cfg, shipped)
    tasks.validate_task(config)
    task = build_task(config)
    r = list(task.resources)[0]
    out["archs"][arch] = [str(r.cloud), r.instance_type, r.region, sorted(p.name for p in shipped.iterdir())]
llm = LLM(api_key="k", max_tokens_budget=1, base_url="http://127.0.0.1:9")
out["prompts"] = str(llm.prompts_dir)
out["rendered"] = llm.render("review_system", {})[:40]
print(json.dumps(out))
"""

"""Stand-in for the bot's worker process in the leak test (tests/test_jail.py).

Started by the test with the bot's secrets in its environment (as deploy/.env or the systemd EnvironmentFile
put them there) and, for the Docker layout, as a non-root uid. It submits one batch to the real LocalExecutor
and polls it to the end, staying alive meanwhile (so its /proc/<pid>/environ is there to be stolen), then
prints {"handle", "state"} as JSON.

    python3 tests/leak_worker.py '<json: base_dir, trust, lock, run_id, spec, bundle, timeout>'
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.experiments.executors import Batch, LocalExecutor, UntrustedRefused  # noqa: E402


def main(arg: str) -> int:
    a = json.loads(arg)
    ex = LocalExecutor(Path(a["base_dir"]), trust=a["trust"], lock_path=Path(a["lock"]))
    try:
        handle = ex.submit(Batch(run_id=int(a["run_id"]), specs={"x86": a["spec"]}, bundle=Path(a["bundle"])))
    except UntrustedRefused as exc:
        print(json.dumps({"handle": None, "state": "refused", "message": str(exc)}))
        return 0
    deadline = time.monotonic() + float(a.get("timeout", 300))
    while ex.poll(handle) == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    print(json.dumps({"handle": handle, "state": ex.poll(handle)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

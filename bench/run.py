"""Run every benchmark under bench/ in turn; exit non-zero if any misses its goal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

here = Path(__file__).parent
failed = []
for script in sorted(here.glob("*.py")):
    if script.name == "run.py":
        continue
    print(f"== {script.name}", flush=True)
    if subprocess.run([sys.executable, str(script)], check=False).returncode != 0:
        failed.append(script.name)
print("all benchmarks met their goals" if not failed else f"missed: {', '.join(failed)}")
sys.exit(1 if failed else 0)

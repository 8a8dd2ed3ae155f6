import sys

from runner_image.main import run

sys.exit(run())

"""Entry point of a submitted Ray job: the resolved config arrives in RLVR_JOB_CONFIG (see cluster/submit.py)."""
import os
import sys

import yaml

from cluster.config import validate_config
from cluster.train import run_training


def main() -> int:
    text = os.environ.get("RLVR_JOB_CONFIG")
    if not text:
        print("cluster.job: RLVR_JOB_CONFIG is not set; submit jobs with `rlvr submit`", file=sys.stderr)
        return 2
    cfg = validate_config(yaml.safe_load(text))
    # Inside a job the driver already belongs to the cluster: join it rather than start a local runtime.
    return run_training(cfg, config_path=os.environ.get("RLVR_JOB_NAME", "job") + ".yaml", address="auto")


if __name__ == "__main__":
    sys.exit(main())

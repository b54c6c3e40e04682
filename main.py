"""cdktf app: synthesizes one MailPlatformStack per config.

With no setting, the embedded default platform. Choose configs with the environment variable
MAILSTRATA_CONFIG (a comma-separated list of YAML files, one stack each, e.g. staging and prod) or the
cdktf context key `mailstrataConfig` (`"context": {"mailstrataConfig": "prod.yaml"}` in cdktf.json).
"""

from mailstrata.app import main

if __name__ == "__main__":
    raise SystemExit(main())

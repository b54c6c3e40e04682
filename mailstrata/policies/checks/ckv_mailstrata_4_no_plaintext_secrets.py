"""CKV_MAILSTRATA_4: no plaintext secret in any resource, its user_data, or the locals it uses.

Resources: every resource type, and every provider block (e.g. the openstack provider's `password`).
Terraform keeps every argument in its state, and OpenStack serves
user_data to any process on the VM through the metadata service, so a secret written out in either
place is disclosed. Secrets must come in as references: `${var.x}` (a sensitive variable),
`${random_password.x.result}`, `${tls_private_key.x.private_key_pem}`, with any functions around them.

What is scanned: every string argument of the resource (nested blocks included); the literal text of an
argument that is an expression (outside `${...}` and the quoted strings inside it); and the `locals` the
expression refers to, followed through other locals. The platform keeps each layer's cloud-init as a
list of lines in a local and sets `user_data = "${base64gzip(join("\\n", concat([...],
local.user_data_<layer>)))}"`: checkov's terraform_json framework hands Python checks the expression
unrendered, so this check reads the locals from the scanned file itself (`scanned_module`).

- PASS: a resource (or provider block) with no finding below.
- FAIL: a literal PEM private key (`-----BEGIN ... PRIVATE KEY-----`); a password-like argument
  (`admin_pass`, `password`, `bind_pw`, `dnpass`, `*_secret`, `private_key_pem`, a secret `payload`, ...)
  set to a literal, or to a local that is a literal; a line of configuration text that sets a
  password-like setting to a literal (`bind_pw = s3cret`, `dnpass = s3cret`, `ldap_bind_pw: s3cret`,
  `password = ...`, `bindPassword = "..."`, `bindpw s3cret`); a URL with a literal password
  (`mysql://user:s3cret@host/db`).
- Not applicable (UNKNOWN): resources with `count = 0`. Values that start with `$` (Terraform references,
  shell variables, crypt hashes) or `%{`, and yes/no switches (`pass = yes`), are not secrets.
"""

from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.provider.base_check import BaseProviderCheck
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

from mailstrata.policies._secrets import block_secrets
from mailstrata.policies._terraform import scanned_module

CHECK_ID = "CKV_MAILSTRATA_4"
CHECK_NAME = "No plaintext secret (password, private key) in resources, user_data or the locals they use"
GUIDELINE = "docs/policies.md#ckv_mailstrata_4"
FIX = (
    "pass it as a sensitive variable or a random_password/tls_private_key reference, "
    "or fetch it at boot (e.g. from Barbican)"
)


class NoPlaintextSecrets(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name=CHECK_NAME,
            id=CHECK_ID,
            categories=[CheckCategories.SECRETS],
            supported_resources=["*"],
            guideline=GUIDELINE,
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        self.evaluated_keys = []
        return judge(conf, self.details)


class NoPlaintextSecretsInProvider(BaseProviderCheck):
    """The same rule for provider blocks (same ID: one rule, two kinds of block)."""

    def __init__(self) -> None:
        super().__init__(
            name=CHECK_NAME,
            id=CHECK_ID,
            categories=[CheckCategories.SECRETS],
            supported_provider=["*"],
            guideline=GUIDELINE,
        )

    def scan_provider_conf(self, conf: dict[str, Any]) -> CheckResult:
        self.evaluated_keys = []
        return judge(conf, self.details)


def judge(conf: dict[str, Any], details: list[str]) -> CheckResult:
    """FAILED with one line of `details` per plaintext secret, PASSED when there is none."""
    findings = list(dict.fromkeys(block_secrets(conf, scanned_module())))
    details.extend(f"{finding}; {FIX}" for finding in findings)
    return CheckResult.FAILED if findings else CheckResult.PASSED


check = NoPlaintextSecrets()
provider_check = NoPlaintextSecretsInProvider()

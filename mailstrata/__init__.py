"""mailstrata: CDK for Terraform constructs for a multi-layer corporate mail platform on OpenStack."""

import os as _os

# jsii (cdktf's runtime) prints a large banner about the Node.js version on every start; the value lists
# the Node majors for which it stays quiet. setdefault: a user's own setting wins.
for _var in (
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION",
    "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION",
):
    _os.environ.setdefault(_var, "20,22,24")

"""OpenStack IDs for construct tests: terraform-provider-openstack takes UUIDs there, and the constructs check it."""

NETWORK = "6f1c1c3e-0000-4000-8000-00000000a001"
SUBNET = "6f1c1c3e-0000-4000-8000-00000000a002"
VIP_SUBNET = "6f1c1c3e-0000-4000-8000-00000000a003"
SHARE_NETWORK = "6f1c1c3e-0000-4000-8000-00000000a004"

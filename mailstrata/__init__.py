"""mailstrata: CDK for Terraform constructs for a multi-layer mail platform on OpenStack."""

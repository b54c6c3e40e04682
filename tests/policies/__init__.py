"""Tests of the custom checkov checks in mailstrata.policies (fixtures under fixtures/<ID>/)."""

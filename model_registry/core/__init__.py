"""Shared facts and plumbing: the contract with Terraform and the handler, settings, errors, records and
AWS clients. Runs in Lambda and on operators' machines."""

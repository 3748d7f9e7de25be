"""Operator tooling that needs a source checkout: building the function and layer zips (and checking
their glibc needs), and driving Terraform."""

terraform {
  required_version = ">= 1.9" # variable validations that refer to other variables

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # The release the platform is tested with; the lock file (.terraform.lock.hcl) pins the build.
      version = "~> 5.100"
    }
  }
}

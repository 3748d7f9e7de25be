terraform {
  required_version = ">= 1.9" # templatestring

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100, < 6.0"
    }
  }
}

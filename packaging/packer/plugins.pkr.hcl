# Packer >= 1.7 installs the builders with `packer init .`. (Debian 12's packer 1.6.6 has them
# built in and does not know this block: validate imprint.pkr.hcl alone there, see README.md.)
packer {
  required_version = ">= 1.7.0"
  required_plugins {
    amazon = {
      version = ">= 1.2.0"
      source  = "github.com/hashicorp/amazon"
    }
    qemu = {
      version = ">= 1.0.9"
      source  = "github.com/hashicorp/qemu"
    }
  }
}

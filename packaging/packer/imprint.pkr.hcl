# A Debian 12 image with imprint as its first-boot agent, for EC2 (amazon-ebs) or a local
# qcow2 (qemu). Build:
#
#   npm run build:binary && npm run build:deb          # dist/imprint_<version>_amd64.deb
#   cd packaging/packer
#   packer init .                                       # Packer >= 1.7: plugins.pkr.hcl
#   packer build -only='amazon-ebs.debian12' -var deb=../../dist/imprint_0.1.0_amd64.deb .
#   packer build -only='qemu.debian12' -var deb=../../dist/imprint_0.1.0_amd64.deb .
#
# The build instance is provisioned by the base image's own cloud-init (the launch key,
# the build user). The image that comes out is provisioned by imprint: cloud-init is switched
# off in it (disable_cloud_init), and the last step removes everything this build left that
# must not be shared (imprint seal). See README.md.

variable "deb" {
  type        = string
  description = "The imprint .deb to install (packaging/build-packages.sh)."
  default     = "../../dist/imprint_0.1.0_amd64.deb"
}

variable "imprint_config" {
  type        = string
  description = "An imprint.yaml for /etc/imprint/imprint.yaml; empty keeps the package's commented example (safe defaults)."
  default     = ""
}

variable "login_user" {
  type        = string
  description = "The non-root login user imprint creates at each instance's first boot (sudo rule, the launch key goes to it, root logins are refused), as the guides ask. Set through a drop-in, /etc/imprint/imprint.yaml.d/50-packer-login-user.yaml. Empty: no default user, the launch key goes to root (not recommended)."
  default     = "admin"
}

variable "disable_cloud_init" {
  type        = bool
  description = "Touch /etc/cloud/cloud-init.disabled in the image, so that imprint provisions it (otherwise imprint stands aside where cloud-init runs, unless imprint.yaml says coexist: take-over). The image's network configuration must then not depend on cloud-init: Debian's own images get theirs from ifupdown/netplan files written at build time; check yours."
  default     = true
}

variable "region" {
  type    = string
  default = "eu-west-1"
}

variable "instance_type" {
  type    = string
  default = "t3.micro"
}

variable "qemu_image_url" {
  type        = string
  description = "Debian 12 generic cloud image (qcow2), the base of the qemu build."
  default     = "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2"
}

variable "qemu_image_checksum" {
  type    = string
  default = "file:https://cloud.debian.org/images/cloud/bookworm/latest/SHA512SUMS"
}

variable "qemu_build_password" {
  type        = string
  description = "Password of the build user in the qemu build only (set through a NoCloud seed; locked again by imprint seal)."
  default     = "packer-build-only"
  sensitive   = true
}

locals {
  timestamp = regex_replace(timestamp(), "[- TZ:]", "")
}

source "amazon-ebs" "debian12" {
  region        = var.region
  instance_type = var.instance_type
  ami_name      = "debian-12-imprint-${local.timestamp}"
  source_ami_filter {
    filters = {
      name                = "debian-12-amd64-*"
      architecture        = "x86_64"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = ["136693071363"] # Debian's AWS account
    most_recent = true
  }
  ssh_username = "admin"
  # IMDSv2 only, on the build instance and on instances of the image.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }
  imds_support = "v2.0"
  tags = {
    Name     = "debian-12-imprint"
    Built-By = "packer"
  }
}

source "qemu" "debian12" {
  iso_url          = var.qemu_image_url
  iso_checksum     = var.qemu_image_checksum
  disk_image       = true
  disk_size        = "4G"
  format           = "qcow2"
  accelerator      = "kvm"
  headless         = true
  output_directory = "output-debian12-imprint"
  vm_name          = "debian-12-imprint.qcow2"
  # The base image's cloud-init reads this NoCloud seed: a build user with a password.
  cd_label = "cidata"
  cd_content = {
    "meta-data" = "instance-id: packer-build\n"
    "user-data" = <<-EOT
      #cloud-config
      ssh_pwauth: true
      users:
        - name: debian
          sudo: "ALL=(ALL) NOPASSWD:ALL"
          shell: /bin/bash
          lock_passwd: false
          plain_text_passwd: "${var.qemu_build_password}"
    EOT
  }
  ssh_username     = "debian"
  ssh_password     = var.qemu_build_password
  ssh_timeout      = "10m"
  shutdown_command = "sudo systemctl poweroff"
}

build {
  sources = ["source.amazon-ebs.debian12", "source.qemu.debian12"]

  provisioner "file" {
    source      = var.deb
    destination = "/tmp/imprint.deb"
  }

  # Install: the package enables imprint.service for the next boot and does not start it
  # (starting it here would provision the *build* instance).
  provisioner "shell" {
    environment_vars = ["DEBIAN_FRONTEND=noninteractive", "IMPRINT_CONFIG=${var.imprint_config}", "LOGIN_USER=${var.login_user}", "DISABLE_CLOUD_INIT=${var.disable_cloud_init}"]
    execute_command  = "chmod +x {{ .Path }}; sudo -E sh -eu {{ .Path }}"
    inline = [
      "apt-get update -qq",
      "apt-get install -y -qq /tmp/imprint.deb",
      "rm -f /tmp/imprint.deb",
      "systemctl is-enabled imprint.service",
      "if [ -n \"$IMPRINT_CONFIG\" ]; then printf '%s\\n' \"$IMPRINT_CONFIG\" > /etc/imprint/imprint.yaml; fi",
      "if [ -n \"$LOGIN_USER\" ]; then mkdir -p /etc/imprint/imprint.yaml.d && printf 'default_user:\\n  name: %s\\n' \"$LOGIN_USER\" > /etc/imprint/imprint.yaml.d/50-packer-login-user.yaml; fi",
      "if imprint config --help >/dev/null 2>&1; then imprint config check; fi",
      "imprint boot --dry-run >/dev/null",
      "if [ \"$DISABLE_CLOUD_INIT\" = true ] && [ -d /etc/cloud ]; then touch /etc/cloud/cloud-init.disabled; fi",
    ]
  }

  # LAST STEP: make the image safe to share. Nothing may run after it (a later provisioner
  # would log in again and leave a fresh trail).
  #
  # `imprint seal --yes` removes, on this running build instance:
  #   - SSH host keys                 /etc/ssh/ssh_host_*            (imprint makes new ones per instance)
  #   - users' SSH keys                ~/.ssh/authorized_keys{,2}, ~/.ssh/id_* of root and every home
  #                                    (including the build user's launch key)
  #   - shell and tool histories       ~/.bash_history, ~/.zsh_history, ~/.python_history, ~/.lesshst, ...
  #   - cloud and tool credentials     ~/.aws, ~/.config/gcloud, ~/.azure, ~/.docker/config.json,
  #                                    ~/.kube/config, .netrc, .git-credentials, private keys by content
  #   - usable passwords               every account locked (the qemu build user's password too)
  #   - logs                           /var/log/* truncated, rotated logs and journal files removed
  #   - machine-id                     /etc/machine-id emptied, /var/lib/dbus/machine-id removed
  #   - state                          /var/lib/imprint, /var/lib/cloud (but seed/), DHCP leases,
  #                                    /var/lib/systemd/random-seed, /tmp, /var/tmp, apt caches
  # The commands after `||` do the same by hand for an imprint without `seal` (before 0.2):
  # keep them in step with `imprint seal --help`, or delete them once every image builder
  # has a package with seal.
  provisioner "shell" {
    execute_command = "chmod +x {{ .Path }}; sudo sh -eu {{ .Path }}"
    inline = [
      "if imprint seal --help >/dev/null 2>&1; then imprint seal --yes; exit 0; fi",
      "echo 'imprint seal is not available: cleaning up by hand' >&2",
      "rm -f /etc/ssh/ssh_host_*",
      "for h in /root /home/*; do rm -f \"$h/.ssh/authorized_keys\" \"$h/.ssh/authorized_keys2\" \"$h\"/.ssh/id_*; done",
      "for h in /root /home/*; do rm -f \"$h/.bash_history\" \"$h/.zsh_history\" \"$h/.python_history\" \"$h/.lesshst\" \"$h/.viminfo\" \"$h/.node_repl_history\"; done",
      "for h in /root /home/*; do rm -rf \"$h/.aws\" \"$h/.config/gcloud\" \"$h/.azure\" \"$h/.docker/config.json\" \"$h/.kube/config\" \"$h/.netrc\" \"$h/.git-credentials\"; done",
      "awk -F: '$2 !~ /^[!*]/ && $2 != \"\" {print $1}' /etc/shadow | while read -r u; do usermod --lock \"$u\"; done",
      "rm -f /etc/shadow- /etc/gshadow- /var/backups/shadow.bak /var/backups/gshadow.bak",
      "find /var/log -type f \\( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' \\) -delete",
      "find /var/log -type f -exec truncate -s 0 {} +",
      "rm -rf /var/log/journal/*",
      ": > /etc/machine-id",
      "rm -f /var/lib/dbus/machine-id /var/lib/systemd/random-seed",
      "rm -rf /var/lib/imprint /var/lib/dhcp/*.leases",
      "if [ -d /var/lib/cloud ]; then find /var/lib/cloud -mindepth 1 -maxdepth 1 ! -name seed -exec rm -rf {} +; fi",
      "apt-get clean",
      "rm -rf /tmp/* /var/tmp/*",
      "sync",
    ]
  }
}

import { VERSION } from '../version.js';

export const HELP = `imprint ${VERSION} — first-boot guest agent for Linux cloud images

Usage:
  imprint boot [--root DIR] [--config FILE] [--dry-run] [--json] [--verbose] [--instance-id ID]
               [--metadata-url URL] [--metadata-deadline DURATION] [--platform NAME]
               [--wireserver-url URL]
  imprint status [--root DIR] [--wait] [--long] [--json]                        (see imprint status --help)
  imprint config check|show [--root DIR] [--config FILE] [--json]               (see imprint config --help)
  imprint clean [--root DIR] [--dry-run] [--json]                               (see imprint clean --help)
  imprint verify-product [--root DIR] [--config FILE] [--metadata-url URL] [--json]
  imprint seal [--root DIR] [--operations LIST] [--dry-run] [--json] [--yes]    (see imprint seal --help)
  imprint audit [--root DIR] [--json] [--junit FILE] [--fail-on SEVERITY]        (see imprint audit --help)
  imprint emulate [--listen HOST:PORT] [--key KEY]... [--scenario NAME[=ARG]]...  (see imprint emulate --help)
  imprint known-hosts [FILE|-] --host NAME...                                   (see imprint known-hosts --help)
  imprint demo [--json] [--keep]
  imprint version [--json]
  imprint help

Commands:
  boot      Make this instance (or the image tree under --root) safe and reachable, once per
            instance: new SSH host keys (the image's are overwritten and removed), a random
            password locked on root and every account with a usable password, sshd set to
            keys only for every user and every Match context, proven by sshd -T -C (password,
            keyboard-interactive, empty-password and root password logins refused; an image's
            sshd runs only in a bubblewrap sandbox), and the default
            login user with its sudo rule when the config names one. Run at every boot by
            imprint.service; work already done for this instance is not repeated.
            Then the network phase: the instance-id, launch keys and product codes from the
            first metadata source that answers (NoCloud and config-drive seeds, then the EC2
            metadata service, IMDSv2 first); the launch keys go into the file sshd reads
            keys from for the login user (AuthorizedKeysFile; ~/.ssh/authorized_keys by
            default), in a block imprint owns. A new instance-id redoes the work.
            Then, with sshd already up, the disk and package tasks of the config below
            (grow-root, clear-swap, ephemeral-disk, package-upgrade).
  status    What imprint did on this boot (done, failed, running, stood aside, not run),
            from the saved report; --wait blocks until the boot has finished.
  config    check: validate the config and its drop-ins; show: the effective config
            and where each value came from.
  clean     Forget this instance (state and saved reports): the next boot provisions
            it again.
  verify-product
            Check the product codes the config expects against the metadata (or the signed
            identity document), as boot does: exit 0 when all are confirmed, 1 otherwise.
  seal      Before an image is shared: remove what must not be shared (host keys, users'
            keys, shell histories, credentials, usable passwords, logs, machine-id, state).
  audit     On an image or instance someone else built: report what the guides say to check
            (password logins, extra keys and users, services, ports, crons, start-up scripts,
            remote logging, weak or baked host keys, leftovers, firewall), by severity.
  emulate   Run a local EC2-style metadata service with fault scenarios, for testing images.
  known-hosts
            On the user's side: known_hosts lines from a new instance's console log (its
            host key block, checked against its fingerprint block): no trust on first use.
  demo      Copy a small built-in image tree (known passwords, baked host keys, an sshd that
            allows passwords) to a temporary directory, run "imprint boot --root" on it, and
            show what changed.
  version   Print the version.
  help      Print this help.

Options:
  --root DIR         Work on the tree under DIR (a mounted image, a test fixture) instead of
                     this system. Nothing outside DIR is changed; writes never follow symlinks.
  --config FILE      Read the config from FILE. Default: /etc/imprint/imprint.yaml, or
                     DIR/etc/imprint/imprint.yaml with --root. A missing default file means
                     the built-in defaults, which are safe on their own.
  --dry-run          Print what would be done; change nothing.
  --json             Print one JSON report on stdout; the human lines go to stderr.
  --verbose          Also print the details of each step.
  --instance-id ID   Treat the instance as ID (default: the DMI product UUID, else
                     /etc/machine-id; with --root only the tree's machine-id).
  --metadata-url URL The metadata service (default http://169.254.169.254; the config's
                     metadata.url). With --root the EC2 source is used only when a URL is given:
                     an offline tree is not the instance this machine runs on.
  --metadata-deadline DURATION
                     How long the network phase may wait for metadata (default 120s).
  --platform NAME    Speak this platform's dialect; skip detection (see Platforms).
  --wireserver-url URL
                     Azure's wireserver, for the ready report (default http://168.63.129.16).
  --keep             (demo) Keep the demo tree instead of removing it.
  --wait             (status) Block until the boot has finished.
  --long             (status) Every task with its outcome, time and actions.
  -h, --help         Print this help.

Config (YAML, every key optional; unknown keys are errors):
  coexist:      stand-aside (default: where cloud-init is installed and enabled, imprint
                leaves the instance to it and says so) or take-over
  host_keys:    enabled (true), types (auto: sshd's HostKey lines, else [ed25519, ecdsa, rsa]),
                rsa_bits (3072), ecdsa_bits (256)
  passwords:    enabled (true), accounts (auto: root and every account with a usable or empty
                password), exclude ([]), method (accepted; the random passwords are
                always hashed with SHA-512 crypt, written locked)
  sshd:         enabled (true), permit_root_login (auto: prohibit-password, or no when a
                default_user is set), use_dns (false), settings ({Keyword: value} to add;
                password-related keywords are imprint's and refused)
  default_user: name (required), groups ([adm, sudo]), shell (/bin/bash), gecos,
                sudo ("ALL=(ALL) NOPASSWD:ALL", or false)
  metadata:     sources ([nocloud, config-drive, ec2]), url (http://169.254.169.254, or
                http://[fd00:ec2::254]), deadline (120s), request_timeout (2s),
                imdsv1 (auto: only when the service has no IMDSv2; never), max_body (64KiB),
                platform (auto, or a name below), platform_users (create | existing | forbid:
                users the platform names for keys), hostname (true: the platform's host name
                where the image has none of its own)
  authorized_keys: enabled (true), user (auto: default_user, else root),
                allow_options (false: options that narrow a key, such as command=, are kept;
                a key with cert-authority, no-touch-required or environment= is refused)
  product_codes: expected ([] = no check), source (metadata | identity-document),
                on_mismatch (warn | fail | stop-units), units ([]), certificate (the pinned
                region certificate, PEM, required with identity-document)
  grow_root:    enabled (true: at every boot, after sshd is up, grow the root partition when
                it is the last on its disk, and the ext2/3/4, xfs or btrfs root filesystem,
                into a larger disk; never shrinks; LVM, dm-crypt and md RAID roots skipped)
  swap:         clear (false; true: at every boot switch each swap area off, zero it, re-make
                it with its UUID and label, switch it on; with --root, only the areas in
                use that the mounted tree's /etc/fstab names)
  ephemeral_disk: device (none: the disk to zero and format on first boot, never guessed;
                refused when mounted, used as swap or holding the root), filesystem (ext4 |
                xfs | btrfs | swap | none), label
  packages:     upgrade (false; true: apt-get or dnf upgrade on first boot, in the background
                after sshd is up, as transient units imprint-package-upgrade-N), timeout (20m)

Platforms (detected before any network use from local signals; one is chosen and said on the
console with the evidence, and only its addresses are contacted, as IP literals):
  ec2           DMI sys_vendor/bios_vendor "Amazon EC2", product_uuid or /sys/hypervisor/uuid
                "ec2...", sys_vendor "3DS Outscale"; 169.254.169.254, fd00:ec2::254
  openstack     DMI product_name "OpenStack Nova"/"OpenStack Compute", sys_vendor "OpenStack
                Foundation", chassis_asset_tag of OpenStack clouds; openstack/latest/meta_data.json
                at 169.254.169.254 and fe80::a9fe:a9fe on each link (first answer wins)
  gce           DMI sys_vendor "Google", product_name "Google Compute Engine", product_serial
                "GoogleCloud-..."; Metadata-Flavor: Google; keys for their user:
  azure         DMI chassis_asset_tag "7783-7084-3265-9085-8269-3286-77"; IMDS (Metadata: true),
                keys for adminUsername, ready report to the wireserver 168.63.129.16
  oci           DMI chassis_asset_tag "OracleCloud.com"; /opc/v2 (Authorization: Bearer Oracle)
  digitalocean  DMI sys_vendor "DigitalOcean"; /metadata/v1.json
  hetzner       DMI sys_vendor "Hetzner"; /hetzner/v1/metadata
  scaleway      DMI sys_vendor "Scaleway" or "scaleway" on the kernel command line; 169.254.42.42
  vultr         DMI sys_vendor "Vultr"; /v1.json
  akamai        DMI sys_vendor "Linode" or "Akamai"; token, /v1/instance, /v1/ssh-keys (per user)
  exoscale      DMI product_name "Exoscale..."; /latest/meta-data/
  cloudstack    DMI product_name "CloudStack..."; the virtual router (the lease's DHCP server)
  alibaba       DMI product_name "Alibaba Cloud ECS", sys_vendor "Alibaba Cloud"; token;
                100.100.100.200
  opennebula    a filesystem labelled CONTEXT, or /var/lib/imprint/seed/opennebula/context.sh;
                SSH_PUBLIC_KEY for USERNAME, SET_HOSTNAME (read as data, never run);
                REPORT_READY=YES: READY=YES to ONEGATE_ENDPOINT/vm (token.txt, VMID)
  nocloud       a filesystem labelled cidata, or ds=nocloud on the kernel command line
  config-drive  a filesystem labelled config-2
  imprint.platform=NAME on the kernel command line names it; a seed filesystem outranks DMI;
  when nothing matches or signals disagree, the sources are tried in order (EC2 last).

Kernel command line: imprint=disabled makes boot do nothing (exit 0).

Exit status (status has its own: see imprint status --help):
  0  done (or nothing left to do for this instance)
  1  a task failed; the system was left as safe as it was found, and the task is retried at
     the next boot
  2  usage or config error; nothing was changed

Environment:
  IMPRINT_TEST_CRASH_AT=N  (tests only) SIGKILL the process at its Nth durable step.
  IMPRINT_TEST_CONSOLE=FILE (tests only) Where the host key blocks go under systemd,
                           instead of /dev/console.
`;

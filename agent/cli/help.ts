import { VERSION } from '../version.js';

export const HELP = `imprint ${VERSION} — first-boot guest agent for Linux cloud images

Usage:
  imprint boot [--root DIR] [--config FILE] [--dry-run] [--json] [--verbose] [--instance-id ID]
               [--metadata-url URL] [--metadata-deadline DURATION]
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
            keys only (checked with sshd -T before anything is replaced), and the default
            login user with its sudo rule when the config names one. Run at every boot by
            imprint.service; work already done for this instance is not repeated.
            Then the network phase: the instance-id, launch keys and product codes from the
            first metadata source that answers (NoCloud and config-drive seeds, then the EC2
            metadata service, IMDSv2 first); the launch keys go into the login user's
            ~/.ssh/authorized_keys, in a block imprint owns. A new instance-id redoes the work.
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
                password), exclude ([]), method (auto: the image's ENCRYPT_METHOD if SHA512 or
                YESCRYPT, else SHA512)
  sshd:         enabled (true), permit_root_login (auto: prohibit-password, or no when a
                default_user is set), use_dns (false), settings ({Keyword: value} to add;
                password-related keywords are imprint's and refused)
  default_user: name (required), groups ([adm, sudo]), shell (/bin/bash), gecos,
                sudo ("ALL=(ALL) NOPASSWD:ALL", or false)
  metadata:     sources ([nocloud, config-drive, ec2]), url (http://169.254.169.254, or
                http://[fd00:ec2::254]), deadline (120s), request_timeout (2s),
                imdsv1 (auto: only when the service has no IMDSv2; never), max_body (64KiB)
  authorized_keys: enabled (true), user (auto: default_user, else root),
                allow_options (false: options such as command= in metadata keys are dropped)
  product_codes: expected ([] = no check), source (metadata | identity-document),
                on_mismatch (warn | fail | stop-units), units ([]), certificate (the pinned
                region certificate, PEM, required with identity-document)

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
